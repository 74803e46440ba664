"""Lambda events as API Gateway and Lambda's SQS poller send them, shaped like the files in
events/: shared by the tests that invoke the functions (cargo lambda, QEMU, SAM)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


@contextlib.contextmanager
def cargo_lambda_watch(port: int = 9000, env: dict[str, str] | None = None, log_name: str = "watch.log"):
    """`cargo lambda watch` at the repository root on `port` (9000, cargo-lambda's default, is
    what the README shows), with `env` added to the functions' environment; yields
    invoke(function, event) -> response, through `cargo lambda invoke`."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        raise RuntimeError(f"port {port} is taken: stop what holds it")
    log = open(ROOT / ".test-run" / log_name, "w")
    proc = subprocess.Popen(["cargo", "lambda", "watch", "--invoke-port", str(port)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})})
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert proc.poll() is None, f"cargo lambda watch exited: see .test-run/{log_name}"
            time.sleep(0.2)

        def call(function: str, event: dict | str) -> dict:
            args = ["cargo", "lambda", "invoke", function, "--invoke-port", str(port)]
            if isinstance(event, str):
                args += ["--data-file", f"events/{event}"]
            else:
                args += ["--data-ascii", json.dumps(event)]
            out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, f"invoke {function} failed: {out.stderr}\n{out.stdout}"
            return json.loads(out.stdout)

        yield call
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def api_event(method: str, path: str, body: dict | None = None, query: str = "", claims_of: str = "list.json") -> dict:
    """An API Gateway HTTP API event, with the caller of the events/ file `claims_of`."""
    event = json.loads((EVENTS / claims_of).read_text())
    event.update(routeKey=f"{method} {path}", rawPath=path, rawQueryString=query,
                 queryStringParameters=dict(p.split("=", 1) for p in query.split("&") if p) or None,
                 body=json.dumps(body) if body is not None else None, isBase64Encoded=False)
    event["requestContext"]["http"].update(method=method, path=path)
    return event


def sqs_batch(queue_url: str | None = None) -> dict | None:
    """One batch from an emulator's queue (`QUEUE_URL` by default), as Lambda's SQS poller
    delivers it; each record keeps its `receiptHandle` for the delete."""
    sqs = boto3.client("sqs")
    msgs = sqs.receive_message(QueueUrl=queue_url or os.environ["QUEUE_URL"], MaxNumberOfMessages=10,
                               WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", [])
    if not msgs:
        return None
    template = json.loads((EVENTS / "sqs-s3-batch.json").read_text())["Records"][0]
    return {"Records": [dict(template, messageId=m["MessageId"], receiptHandle=m["ReceiptHandle"],
                             body=m["Body"], md5OfBody=m["MD5OfBody"], attributes=m.get("Attributes", {}))
                        for m in msgs]}


def acknowledge(batch: dict) -> None:
    """Deletes a delivered batch's messages, as Lambda does once the function succeeded."""
    sqs = boto3.client("sqs")
    for r in batch["Records"]:
        sqs.delete_message(QueueUrl=os.environ["QUEUE_URL"], ReceiptHandle=r["receiptHandle"])


def stream_filters() -> list[dict]:
    """The events function's stream filters, as template.yaml gives them to Lambda."""
    from cfnlint.decode import decode_str

    template, _ = decode_str((Path(__file__).resolve().parent.parent / "template.yaml").read_text())
    props = template["Resources"]["EventsFunction"]["Properties"]["Events"]["Changes"]["Properties"]
    return [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]


def passes(record: dict, filters: list[dict]) -> bool:
    """Whether Lambda hands `record` to the function: it matches one of the filters (event
    pattern rules: a list of values any of which matches, or {"exists": bool})."""

    def matches(pattern: dict, node) -> bool:
        node = node if isinstance(node, dict) else {}
        for key, want in pattern.items():
            if isinstance(want, dict):
                if not matches(want, node.get(key)):
                    return False
            elif not any(rule(r, key in node, node.get(key)) for r in want):
                return False
        return True

    def rule(r, present: bool, value) -> bool:
        if isinstance(r, dict):
            assert set(r) == {"exists"}, f"a filter rule this matcher does not know: {r}"
            return present == r["exists"]
        return present and value == r

    return any(matches(f, record) for f in filters)
