"""The artifact that ships: the three functions as `sam build` makes them for arm64 (cargo
lambda, zig, libjpeg-turbo's C code cross-compiled), checked as ELF files and then run under
QEMU user emulation behind a Lambda Runtime API stub, against the AWS emulator.

    eval "$(infra/emulator.sh start)"; infra/arm64.sh   # builds, then runs this file
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lambda_events import acknowledge, api_event, sqs_batch

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

for var in ("AWS_ENDPOINT_URL", "TABLE_NAME", "BUCKET_NAME", "QUEUE_URL", "ARM64_BUILD", "ARM64_SYSROOT"):
    if not os.environ.get(var):
        pytest.exit(f"{var} is not set: run `make test` (infra/arm64.sh sets it)", returncode=2)

BUILD = Path(os.environ["ARM64_BUILD"])
FUNCTIONS = {"upload": "UploadFunction", "list": "ListFunction", "processor": "ProcessorFunction",
             "events": "EventsFunction"}
# The events binary's role in EventsFunction (the template sets it per function).
ROLES = {"events": {"EVENTS_ROLE": "publish", "EVENT_TYPES": "all"}}
# What the provided.al2023 image has for a binary to link against (glibc 2.34 and the GCC runtime).
AL2023_LIBRARIES = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-aarch64.so.1", "libpthread.so.0",
                    "libdl.so.2", "librt.so.1", "libutil.so.1"}
AL2023_GLIBC = (2, 34)
EM_AARCH64 = 183


def bootstrap(function: str) -> Path:
    """Where `sam build` put the function's bootstrap: its `CodeUri` in the built template
    (functions built once for several share a `…-Shared` directory)."""
    lines = (BUILD / "template.yaml").read_text().splitlines()
    start = lines.index(f"  {FUNCTIONS[function]}:")
    code_uri = next(line.split(":", 1)[1].strip() for line in lines[start:] if line.strip().startswith("CodeUri:"))
    return BUILD / code_uri / "bootstrap"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_binary_is_aarch64_and_links_only_what_al2023_has(function):
    data = bootstrap(function).read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "not a 64-bit ELF file"
    assert int.from_bytes(data[18:20], "little") == EM_AARCH64, "not an aarch64 binary"
    dynamic = subprocess.run(["readelf", "--dynamic", "--version-info", "--wide", str(bootstrap(function))],
                             capture_output=True, text=True, check=True).stdout
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
    assert needed and needed <= AL2023_LIBRARIES, f"links what provided.al2023 lacks: {needed - AL2023_LIBRARIES}"
    versions = {tuple(map(int, v.split("."))) for v in re.findall(r"Name: GLIBC_([0-9.]+)", dynamic)}
    assert versions and max(versions) <= AL2023_GLIBC, f"needs glibc {max(versions)}, al2023 has 2.34"


class RuntimeApi:
    """The Lambda Runtime API's four routes, for one function: events are handed out one at a
    time, and each answer (or error) comes back to whoever invoked."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.answers: dict[str, queue.Queue[tuple[str, bytes]]] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if not self.path.endswith("/runtime/invocation/next"):
                    return self.reply(404)
                request_id, event = api.events.get()
                self.reply(200, event, {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int((time.time() + 300) * 1000)),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:arm64",
                    "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0",
                    "Content-Type": "application/json",
                })

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                m = re.search(r"/runtime/(?:invocation/([^/]+)/(response|error)|init/(error))$", self.path)
                if not m:
                    return self.reply(404)
                self.reply(202, b"{}")
                kind = m.group(2) or "init-error"
                for request_id in ([m.group(1)] if m.group(1) else list(api.answers)):
                    api.answers[request_id].put((kind, body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, event: dict, timeout: float = 120) -> dict | None:
        request_id = str(uuid.uuid4())
        self.answers[request_id] = queue.Queue()
        self.events.put((request_id, json.dumps(event).encode()))
        try:
            kind, body = self.answers[request_id].get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no answer in {timeout} s: see .test-run/arm64-*.log")
        finally:
            del self.answers[request_id]
        assert kind == "response", f"{kind}: {body.decode(errors='replace')}"
        return json.loads(body)


@pytest.fixture(scope="module")
def functions():
    """Each function's arm64 bootstrap under qemu-aarch64, as Lambda runs it: a long-lived
    process asking the Runtime API for events. Yields {name: RuntimeApi}."""
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    assert qemu, "QEMU user emulation is missing: infra/arm64.sh installs qemu-user-static"
    running, apis = [], {}
    logs = ROOT / ".test-run"
    try:
        for name in FUNCTIONS:
            api = RuntimeApi()
            env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=api.address, AWS_LAMBDA_FUNCTION_NAME=name,
                       AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
                       AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{name}", AWS_LAMBDA_LOG_STREAM_NAME="arm64",
                       MAX_RECEIVE_COUNT="5", RUST_LOG="info", **ROLES.get(name, {}))
            log = open(logs / f"arm64-{name}.log", "w")
            proc = subprocess.Popen([qemu, "-L", os.environ["ARM64_SYSROOT"], str(bootstrap(name))],
                                    env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append((proc, log))
            apis[name] = api
        yield apis
    finally:
        for proc, log in running:
            proc.kill()
            proc.wait(timeout=30)
            log.close()
        for api in apis.values():
            api.server.shutdown()


def deliver_to(processor: RuntimeApi, ids: set[str]) -> None:
    """SQS batches from the emulator's queue to the processor, as Lambda's poller does, until
    a notification of each of `ids` has been handled."""
    seen: set[str] = set()
    for _ in range(30):
        batch = sqs_batch()
        if not batch:
            continue
        assert processor.invoke(batch) == {"batchItemFailures": []}
        acknowledge(batch)
        seen |= {i for i in ids for r in batch["Records"] if i in r["body"]}
        if seen == ids:
            return
    pytest.fail(f"no notification of {ids - seen} arrived")


def test_a_jpeg_and_a_png_through_the_arm64_functions(functions):
    files = {}
    for name, content_type in (("photo.jpg", "image/jpeg"), ("drawing.png", "image/png")):
        data = (FIXTURES / name).read_bytes()
        resp = functions["upload"].invoke(api_event("POST", "/upload", {
            "filename": name, "content_type": content_type, "size": len(data)}))
        assert resp["statusCode"] == 201, resp
        created = json.loads(resp["body"])
        put = urllib.request.Request(created["upload"]["url"], data=data, method="PUT",
                                     headers=created["upload"]["headers"])
        assert urllib.request.urlopen(put).status == 200
        files[created["id"]] = (name, data)

    deliver_to(functions["processor"], set(files))

    for id, (name, data) in files.items():
        resp = functions["list"].invoke(api_event("GET", f"/files/{id}"))
        assert resp["statusCode"] == 200, resp
        got = json.loads(resp["body"])
        assert (got["filename"], got["status"]) == (name, "processed"), got
        assert got["sha256"] == hashlib.sha256(data).hexdigest()
        expected = (640, 427, "jpg") if name.endswith(".jpg") else (300, 200, "png")
        meta = got["metadata"]
        assert (meta["width"], meta["height"], meta["format"]) == expected, meta
        with urllib.request.urlopen(got["thumbnail_url"]) as thumb:
            head = thumb.read(4)
        assert head[:3] == b"\xff\xd8\xff" or head == b"\x89PNG", f"thumbnail is not an image: {head!r}"

    listed = functions["list"].invoke(api_event("GET", "/files"))
    assert listed["statusCode"] == 200, listed
    assert set(files) <= {f["id"] for f in json.loads(listed["body"])["items"]}


def test_the_events_function_publishes_a_stream_batch_on_arm64(functions):
    batch = json.loads((ROOT / "events" / "dynamodb-stream.json").read_text())
    assert functions["events"].invoke(batch) == {"batchItemFailures": []}
