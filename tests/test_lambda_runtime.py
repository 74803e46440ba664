"""Each Lambda binary, main() included, served through the Lambda Runtime API by
`cargo lambda watch` and invoked with `cargo lambda invoke` and the files in events/,
against the AWS emulator that `make test` starts (its variables are in the environment)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from lambda_events import acknowledge, api_event, cargo_lambda_watch, sqs_batch

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

for var in ("AWS_ENDPOINT_URL", "TABLE_NAME", "BUCKET_NAME", "QUEUE_URL"):
    if var not in os.environ:
        pytest.exit(f"{var} is not set: run `make test` (it starts the AWS emulator)", returncode=2)


@pytest.fixture(scope="module")
def invoke():
    """`cargo lambda watch` at the repository root, as the README shows it: one emulator
    serving every function on port 9000 (cargo-lambda's default)."""
    with cargo_lambda_watch() as call:
        yield call


def body(resp: dict) -> dict:
    return json.loads(resp["body"])


def test_the_readmes_commands_from_the_root(invoke):
    # Exactly `cargo lambda invoke upload --data-file events/upload-valid.json`, and `cargo run`
    # still meaning the local stack (its binary is the root package's default-run).
    ok = invoke("upload", "upload-valid.json")
    assert ok["statusCode"] == 201, ok
    run = subprocess.run(["cargo", "run", "--", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "--data-dir" in run.stdout, run.stderr


def test_event_files_through_each_function(invoke):
    ok = invoke("upload", "upload-valid.json")
    assert ok["statusCode"] == 201, ok
    assert body(ok)["status"] == "pending"
    assert body(ok)["upload"]["headers"] == {"content-type": "image/png", "if-none-match": "*"}, body(ok)
    bad = invoke("upload", "upload-invalid.json")
    assert (bad["statusCode"], body(bad)["error"]["code"]) == (400, "invalid_filename")
    big = invoke("upload", "upload-too-large.json")
    assert (big["statusCode"], body(big)["error"]["code"]) == (413, "too_large")
    # Above MULTIPART_THRESHOLD the function creates the multipart upload in the bucket.
    multi = invoke("upload", "upload-multipart.json")
    assert multi["statusCode"] == 201, multi
    upload = body(multi)["upload"]
    assert (upload["method"], upload["part_size"], upload["part_count"]) == ("MULTIPART", 16 << 20, 13), upload
    parts = invoke("upload", api_event("GET", f"/files/{body(multi)['id']}/parts", claims_of="upload-multipart.json"))
    assert (parts["statusCode"], body(parts)["parts"]) == (200, []), parts
    # Writes live in the upload function; the event's file does not exist in the emulator.
    gone = invoke("upload", "delete.json")
    assert (gone["statusCode"], body(gone)["error"]["code"]) == (404, "not_found")
    for name in ("list.json", "list-status.json", "list-cursor.json"):
        resp = invoke("list", name)
        assert resp["statusCode"] == 200, (name, resp)
        assert "items" in body(resp) and "next_cursor" in body(resp)
    missing = invoke("list", "get-missing.json")
    assert (missing["statusCode"], body(missing)["error"]["code"]) == (404, "not_found")
    # Events for objects this deployment never issued are acknowledged, not retried.
    assert invoke("processor", "sqs-s3-test-event.json") == {"batchItemFailures": []}
    assert invoke("processor", "sqs-s3-batch.json") == {"batchItemFailures": []}
    assert invoke("processor", "s3-put.json") is None
    # The schedule's event runs the sweeper against the emulator's table and queue.
    swept = invoke("processor", "schedule-sweep.json")
    assert set(swept) == {"expired_leases", "arrived", "waiting"}, swept


def test_an_upload_through_all_three_functions(invoke):
    data = b"a,b\n1,2\n" * 64
    resp = invoke("upload", api_event("POST", "/upload", {"filename": "sheet.csv", "content_type": "text/csv", "size": len(data)}))
    assert resp["statusCode"] == 201, resp
    file = body(resp)
    req = urllib.request.Request(file["upload"]["url"], data=data, method="PUT", headers=file["upload"]["headers"])
    assert urllib.request.urlopen(req).status == 200

    def list_fn(event: dict) -> dict:
        return invoke("list", event)

    deadline = time.time() + 60
    while True:
        got = body(list_fn(api_event("GET", f"/files/{file['id']}", query="")))
        if got["status"] == "processed":
            break
        assert time.time() < deadline, got
        batch = sqs_batch()
        if batch:
            failures = invoke("processor", batch)["batchItemFailures"]
            assert failures == [], failures
            acknowledge(batch)
    assert got["processed"] is True and got["size"] == len(data)
    listed = body(list_fn(api_event("GET", "/files", query="status=processed&limit=1000")))
    assert file["id"] in [f["id"] for f in listed["items"]]


def emf_documents() -> list[dict]:
    """The CloudWatch Embedded Metric Format documents the functions wrote so far."""
    docs = []
    for line in (ROOT / ".test-run" / "watch.log").read_text(errors="replace").splitlines():
        start = line.find('{"_aws"')
        if start >= 0:
            docs.append(json.loads(line[start:]))
    return docs


def test_each_function_writes_emf_metrics_for_its_invocation(invoke):
    before = len(emf_documents())
    invoke("upload", "upload-valid.json")
    invoke("upload", "upload-multipart.json")
    invoke("processor", "s3-put.json")
    time.sleep(0.5)  # stdout reaches the log through cargo lambda's pipe
    docs = emf_documents()[before:]
    assert docs, "no EMF document after the invocations"
    for doc in docs:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Picasso"
        assert all(dims[0] == "service" for dims in directive["Dimensions"]), directive
        for metric in directive["Metrics"]:
            assert metric["Name"] in doc, (metric, doc)
        assert doc["request_id"] and doc["service"] in ("upload", "list", "processor"), doc
    uploads = [d for d in docs if "uploads_issued" in d]
    assert sorted((d["method"], d["uploads_issued"]) for d in uploads) == [("multipart", 1), ("single", 1)], uploads
    granted = sorted(d["upload_bytes_granted"] for d in docs if "upload_bytes_granted" in d)
    assert granted == [12345, 209715200], granted
    units = {m["Name"]: m.get("Unit") for d in docs for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["upload_bytes_granted"] == "Bytes" and units["uploads_issued"] == "Count", units
    # The S3 event is for a bucket not this deployment's: acknowledged, counted with its reason.
    ignored = [d for d in docs if "events_ignored" in d]
    assert [(d["service"], d["reason"]) for d in ignored] == [("processor", "event for another bucket")], ignored
    # Every function's first invocation counted a cold start (the list function's metric).
    invoke("list", "list.json")
    time.sleep(0.5)
    cold = {d["service"] for d in emf_documents() if d.get("cold_starts") == 1}
    assert cold == {"upload", "list", "processor"}, cold
