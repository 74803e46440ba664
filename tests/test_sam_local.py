"""The functions under SAM's own local tools, as users run them: `sam local invoke` with the
files in events/, and `sam local start-api` serving the HTTP API, in containers of the invoke
image infra/sam-local.sh builds, against the AWS emulator.

    eval "$(infra/emulator.sh start)"; eval "$(infra/sam-local.sh up)"
    .venv/bin/python -m pytest -q tests/test_sam_local.py
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

for var in ("AWS_ENDPOINT_URL", "QUEUE_URL", "SAM_TEMPLATE", "SAM_IMAGE", "SAM_ENV_VARS"):
    if not os.environ.get(var):
        pytest.exit(f"{var} is not set: run `make test`, or see this file's docstring", returncode=2)

COMMON = ["--template", os.environ["SAM_TEMPLATE"], "--invoke-image", os.environ["SAM_IMAGE"], "--skip-pull-image",
          "--docker-network", "host", "--env-vars", os.environ["SAM_ENV_VARS"]]


def sam_invoke(function: str, event: str | dict) -> dict | None:
    """`sam local invoke FUNCTION -e EVENT`: the function's answer (SAM prints it last on stdout)."""
    if isinstance(event, dict):
        path = ROOT / ".test-run" / "sam-event.json"
        path.write_text(json.dumps(event))
        event = str(path)
    else:
        event = str(EVENTS / event)
    out = subprocess.run(["sam", "local", "invoke", function, "--event", event, *COMMON],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"sam local invoke {function}: {out.stderr[-3000:]}"
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    assert lines, f"no answer from {function}: {out.stderr[-3000:]}"
    return json.loads(lines[-1])


def body(resp: dict) -> dict:
    return json.loads(resp["body"])


def test_each_function_with_its_events():
    ok = sam_invoke("UploadFunction", "upload-valid.json")
    assert ok["statusCode"] == 201, ok
    assert body(ok)["upload"]["method"] == "PUT"
    bad = sam_invoke("UploadFunction", "upload-invalid.json")
    assert (bad["statusCode"], body(bad)["error"]["code"]) == (400, "invalid_filename")
    listed = sam_invoke("ListFunction", "list.json")
    assert listed["statusCode"] == 200 and "items" in body(listed), listed
    missing = sam_invoke("ListFunction", "get-missing.json")
    assert (missing["statusCode"], body(missing)["error"]["code"]) == (404, "not_found")
    assert sam_invoke("ProcessorFunction", "sqs-s3-test-event.json") == {"batchItemFailures": []}
    swept = sam_invoke("ProcessorFunction", "schedule-sweep.json")
    assert set(swept) == {"expired_leases", "arrived", "waiting"}, swept
