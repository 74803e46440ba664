"""Events on AWS, against the emulator `make test` starts: files made, processed, failed and
deleted through the upload and processor functions; the table's stream records read from the
emulator's DynamoDB stream and handed to the events function (cargo lambda watch/invoke) ->
PutEvents -> the template's rule -> its SQS queue -> the webhook function -> a receiver on
this machine that checks each signature with the Standard Webhooks library."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import jsonschema
import pytest
from lambda_events import acknowledge, api_event, cargo_lambda_watch, passes, sqs_batch, stream_filters
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "events.schema.json").read_text())

for var in ("AWS_ENDPOINT_URL", "TABLE_NAME", "EVENT_BUS_NAME", "WEBHOOK_QUEUE_URL", "WEBHOOK_SECRET_ARN"):
    if var not in os.environ:
        pytest.exit(f"{var} is not set: run `make test` (it starts the AWS emulator)", returncode=2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A webhook receiver: verifies with the Standard Webhooks library, refuses (500) the ids
    in `refuse` once each, and keeps what it accepted."""

    def __init__(self, secret: str):
        self.webhook = Webhook(secret)
        self.accepted: list[tuple[str, dict]] = []
        self.refused: list[str] = []
        self.refuse: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    event = receiver.webhook.verify(body, dict(self.headers))
                except Exception as e:  # noqa: BLE001 - any verification failure is a 401
                    self.send_response(401)
                    self.end_headers()
                    self.wfile.write(str(e).encode())
                    return
                wid = self.headers["webhook-id"]
                if wid in receiver.refuse:
                    receiver.refuse.discard(wid)
                    receiver.refused.append(wid)
                    self.send_response(500)
                else:
                    receiver.accepted.append((wid, event))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/picasso"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class ManagementApi:
    """API Gateway's management API for one WebSocket stage, as the events function calls it
    (`POST /live/@connections/{id}`): keeps what each connection was sent; `gone` ones are 410."""

    def __init__(self):
        self.sent: dict[str, list[dict]] = {}
        self.gone: set[str] = set()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                connection = self.path.rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers["content-length"]))
                if connection in api.gone:
                    self.send_response(410)
                    self.send_header("content-type", "application/json")
                    self.send_header("x-amzn-errortype", "GoneException")
                    self.end_headers()
                    self.wfile.write(b'{"message": "gone"}')
                    return
                api.sent.setdefault(connection, []).append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/live"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def stream_records(ids: set[str], usage: bool = False) -> list[dict]:
    """Every record of the files table's stream about `ids` (and with `usage`, about owners'
    usage items), in stream order, shaped as Lambda's DynamoDB event source hands them to a
    function."""
    ddb, streams = boto3.client("dynamodb"), boto3.client("dynamodbstreams")
    arn = ddb.describe_table(TableName=os.environ["TABLE_NAME"])["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            out = streams.get_records(ShardIterator=it, Limit=1000)
            for r in out["Records"]:
                key = r["dynamodb"]["Keys"]["id"]["S"]
                if key in ids or (usage and key.startswith("usage#")):
                    d = dict(r["dynamodb"])
                    when = d["ApproximateCreationDateTime"]
                    d["ApproximateCreationDateTime"] = when.timestamp() if isinstance(when, datetime) else when
                    records.append({**{k: v for k, v in r.items() if k != "dynamodb"}, "dynamodb": d,
                                    "eventSourceARN": arn})
            if not out["Records"]:
                break
            it = out.get("NextShardIterator")
    return records


def body(resp: dict) -> dict:
    return json.loads(resp["body"])


@pytest.fixture(scope="module")
def stack():
    """Two `cargo lambda watch`: one serving the functions (the events binary as `publish`,
    every type published), one the events binary as the webhook function, posting to a
    receiver here."""
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["WEBHOOK_SECRET_ARN"])["SecretString"]
    receiver = Receiver(f"whsec_{secret}")
    management = ManagementApi()
    publish = {"EVENTS_ROLE": "publish", "EVENT_TYPES": "all", "WEBSOCKET_ENDPOINT": management.endpoint}
    webhook = {"EVENTS_ROLE": "webhook", "WEBHOOK_URL": receiver.url}
    with cargo_lambda_watch(free_port(), publish, "watch-publish.log") as invoke, \
            cargo_lambda_watch(free_port(), webhook, "watch-webhook.log") as deliver, \
            cargo_lambda_watch(free_port(), {"EVENTS_ROLE": "connections"}, "watch-connections.log") as connections:
        yield invoke, deliver, receiver, management, connections
    receiver.server.shutdown()
    management.server.shutdown()


def upload(invoke, name: str, content_type: str, data: bytes) -> str:
    resp = invoke("upload", api_event("POST", "/upload", {"filename": name, "content_type": content_type,
                                                           "size": len(data)}))
    assert resp["statusCode"] == 201, resp
    file = body(resp)
    req = urllib.request.Request(file["upload"]["url"], data=data, method="PUT", headers=file["upload"]["headers"])
    assert urllib.request.urlopen(req).status == 200
    return file["id"]


def process_until_final(invoke, ids: list[str]) -> dict[str, str]:
    deadline = time.time() + 90
    while True:
        status = {i: body(invoke("list", api_event("GET", f"/files/{i}")))["status"] for i in ids}
        if all(s in ("processed", "failed") for s in status.values()):
            return status
        assert time.time() < deadline, status
        batch = sqs_batch()
        if batch:
            assert invoke("processor", batch)["batchItemFailures"] == []
            acknowledge(batch)


def deliver_all(deliver, receiver: Receiver, expected: int) -> list[dict]:
    """Hands the webhook queue's messages to the webhook function until `expected` have been
    accepted; returns the function's answers."""
    answers = []
    deadline = time.time() + 60
    while len(receiver.accepted) < expected:
        assert time.time() < deadline, (len(receiver.accepted), expected)
        batch = sqs_batch(os.environ["WEBHOOK_QUEUE_URL"])
        if not batch:
            continue
        answer = deliver("events", batch)
        answers.append(answer)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        sqs = boto3.client("sqs")
        for r in batch["Records"]:
            if r["messageId"] not in failed:
                sqs.delete_message(QueueUrl=os.environ["WEBHOOK_QUEUE_URL"], ReceiptHandle=r["receiptHandle"])
        if failed:
            # The function put the message away for its backoff (a minute): not visible now.
            again = sqs.receive_message(QueueUrl=os.environ["WEBHOOK_QUEUE_URL"], MaxNumberOfMessages=10)
            assert not failed & {m["MessageId"] for m in again.get("Messages", [])}, "retried at once"
            for m in again.get("Messages", []):
                sqs.change_message_visibility(QueueUrl=os.environ["WEBHOOK_QUEUE_URL"],
                                              ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
            # The minute passes.
            for r in batch["Records"]:
                if r["messageId"] in failed:
                    sqs.change_message_visibility(QueueUrl=os.environ["WEBHOOK_QUEUE_URL"],
                                                  ReceiptHandle=r["receiptHandle"], VisibilityTimeout=0)
    return answers


def test_a_files_life_reaches_the_webhook_signed_once_per_change_in_version_order(stack):
    invoke, deliver, receiver, _, _ = stack
    kept = upload(invoke, "kept.txt", "text/plain", b"kept\n" * 20)
    liar = upload(invoke, "liar.png", "image/png", b"not a picture at all")
    gone = upload(invoke, "gone.txt", "text/plain", b"gone\n")
    assert process_until_final(invoke, [kept, liar, gone]) == {kept: "processed", liar: "failed", gone: "processed"}
    assert invoke("upload", api_event("DELETE", f"/files/{gone}"))["statusCode"] == 204

    # What Lambda hands the function: the records the template's filters let through.
    everything = stream_records({kept, liar, gone}, usage=True)
    records = [r for r in everything if passes(r, stream_filters())]
    dropped = [r for r in everything if not passes(r, stream_filters())]
    claims = [r for r in dropped if r["dynamodb"].get("NewImage", {}).get("status", {}).get("S") == "processing"]
    usage_items = [r for r in dropped if r["dynamodb"]["Keys"]["id"]["S"].startswith("usage#")]
    assert len(claims) == 3 and usage_items, "each claim and the usage items stay out"
    assert len(claims) + len(usage_items) == len(dropped), "nothing else is filtered out"
    assert len(records) == 7, "one record per event: 3 made, 3 verdicts, 1 deletion"
    batch = {"Records": records}
    # The first delivery of the processed event fails: retried with the same webhook-id.
    receiver.refuse.add(f"{kept}.3")
    assert invoke("events", batch) == {"batchItemFailures": []}
    answers = deliver_all(deliver, receiver, expected=7)
    assert receiver.refused == [f"{kept}.3"]
    assert any(a["batchItemFailures"] for a in answers), "the refused delivery went back to the queue"

    got: dict[str, list[tuple[int, str]]] = {}
    for wid, event in receiver.accepted:
        jsonschema.validate(event, SCHEMA)
        assert event["id"] == wid
        got.setdefault(event["data"]["id"], []).append((event["data"]["version"], event["type"]))
    assert sorted(got[kept]) == [(1, "file.created"), (3, "file.processed")]
    assert sorted(got[liar]) == [(1, "file.created"), (3, "file.failed")]
    assert sorted(got[gone]) == [(1, "file.created"), (3, "file.processed"), (4, "file.deleted")]
    failed = next(e for _, e in receiver.accepted if e["type"] == "file.failed")
    assert failed["data"]["error"]["code"] and failed["data"]["owner"]

    # The same stream batch again (Lambda retries, or a replay): the same ids, nothing new.
    before = {wid for wid, _ in receiver.accepted}
    assert invoke("events", batch) == {"batchItemFailures": []}
    deliver_all(deliver, receiver, expected=14)
    assert {wid for wid, _ in receiver.accepted} == before


def test_the_event_files_through_the_events_function(stack):
    invoke, deliver, receiver, _, _ = stack
    # A stream batch of one file's whole life: published, nothing failed.
    assert invoke("events", "dynamodb-stream.json") == {"batchItemFailures": []}
    # A webhook message whose receipt handle is not the emulator's: delivered all the same.
    seen = len(receiver.accepted)
    assert deliver("events", "sqs-webhook.json") == {"batchItemFailures": []}
    assert receiver.accepted[seen][0] == "0192f6d8-7a1b-7c3d-8e4f-5a6b7c8d9e8a.3"
    # A message that is no event is kept for the dead-letter queue, not dropped.
    poison = json.loads((ROOT / "events" / "sqs-webhook.json").read_text())
    poison["Records"][0]["body"] = "not json"
    assert deliver("events", poison) == {"batchItemFailures": [{"itemIdentifier": poison["Records"][0]["messageId"]}]}


def test_the_local_stack_sends_the_same_events_verifiable_with_the_library(tmp_path):
    """The local stack (`cargo run`), webhooks on: the same body, the same signature scheme."""
    import subprocess

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    receiver = Receiver(secret)
    log = open(ROOT / ".test-run" / "events-local-stack.log", "w")
    proc = subprocess.Popen([str(ROOT / "target" / "debug" / "picasso"), "--port", "0", "--s3-port", "0",
                             "--data-dir", str(tmp_path), "--webhook-url", receiver.url, "--webhook-secret", secret,
                             "--event-types", "all"], stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        api = None
        for line in proc.stdout:
            if line.startswith("API: "):
                api = line.split(" ", 1)[1].strip()
            if line.startswith("Ready in"):
                break
        assert api, "the local stack printed no API line"

        def call(method: str, path: str, data: dict | None = None, token: str | None = None) -> dict:
            req = urllib.request.Request(f"{api}{path}", method=method, data=json.dumps(data).encode() if data else None,
                                         headers={"content-type": "application/json",
                                                  **({"authorization": f"Bearer {token}"} if token else {})})
            with urllib.request.urlopen(req) as resp:
                return json.loads(resp.read() or b"null")

        token = call("POST", "/auth/dev-token", {"sub": "carol"})["token"]
        data = b"local events\n"
        file = call("POST", "/upload", {"filename": "l.txt", "content_type": "text/plain", "size": len(data)}, token)
        put = urllib.request.Request(file["upload"]["url"], data=data, method="PUT", headers=file["upload"]["headers"])
        assert urllib.request.urlopen(put).status == 200
        deadline = time.time() + 30
        while len(receiver.accepted) < 2:
            assert time.time() < deadline, receiver.accepted
            time.sleep(0.05)
        for wid, event in receiver.accepted:
            jsonschema.validate(event, SCHEMA)
            assert event["data"]["owner"] == "carol"
        assert sorted(wid for wid, _ in receiver.accepted) == [f"{file['id']}.1", f"{file['id']}.3"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        receiver.server.shutdown()


def connect(connections, route: str, connection: str, audience: str | None) -> dict:
    event = json.loads((ROOT / "events" / "websocket-connect.json").read_text())
    event["requestContext"].update(routeKey=route, connectionId=connection)
    if audience is None:
        del event["requestContext"]["authorizer"]
    else:
        event["requestContext"]["authorizer"]["audience"] = audience
    return connections("events", event)


def test_live_connections_get_their_owners_events_and_gone_ones_are_forgotten(stack):
    invoke, _, _, management, connections = stack
    owner = "owner#3f8e5f6a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"   # the owner in events/dynamodb-stream.json
    for connection, audience in [("c-owner", owner), ("c-other", "owner#someone-else"), ("c-admin", "all"),
                                 ("c-gone", owner)]:
        assert connect(connections, "$connect", connection, audience) == {"statusCode": 200}
    assert connect(connections, "$connect", "c-nobody", None) == {"statusCode": 401}, "no authorizer context"
    management.gone.add("c-gone")
    assert invoke("events", "dynamodb-stream.json") == {"batchItemFailures": []}
    got = {c: [(e["type"], e["data"]["version"]) for e in events] for c, events in management.sent.items()}
    life = [("file.created", 1), ("file.processed", 3), ("file.deleted", 4)]
    assert got.get("c-owner") == life, got
    assert got.get("c-admin") == life, got
    assert "c-other" not in got and "c-nobody" not in got
    for events in management.sent.values():
        for e in events:
            jsonschema.validate(e, SCHEMA)
    table = boto3.client("dynamodb")
    items = table.scan(TableName=os.environ["CONNECTIONS_TABLE"])["Items"]
    kept = {i["connection_id"]["S"] for i in items}
    assert "c-gone" not in kept and {"c-owner", "c-other", "c-admin"} <= kept, kept
    assert all(int(i["expires_at"]["N"]) > time.time() for i in items), "every connection expires"
    assert connect(connections, "$disconnect", "c-owner", owner) == {"statusCode": 200}
    kept = {i["connection_id"]["S"] for i in table.scan(TableName=os.environ["CONNECTIONS_TABLE"])["Items"]}
    assert "c-owner" not in kept
