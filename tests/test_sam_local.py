"""The functions under SAM's own local tools, as users run them: `sam local invoke` with the
files in events/, and `sam local start-api` serving the HTTP API, in containers of the invoke
image infra/sam-local.sh builds, against the AWS emulator.

    eval "$(infra/emulator.sh start)"; eval "$(infra/sam-local.sh up)"
    .venv/bin/python -m pytest -q tests/test_sam_local.py
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

for var in ("AWS_ENDPOINT_URL", "TABLE_NAME", "BUCKET_NAME", "QUEUE_URL", "SAM_TEMPLATE", "SAM_IMAGE"):
    if not os.environ.get(var):
        pytest.exit(f"{var} is not set: run `make test`, or see this file's docstring", returncode=2)


def docker_gateway() -> str:
    """The host's address on Docker's default bridge, where SAM's containers run."""
    out = subprocess.run(["docker", "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
                         capture_output=True, text=True, check=True)
    config = json.loads(out.stdout)[0]
    return config.get("Gateway") or str(ipaddress.ip_network(config["Subnet"])[1])


def forward(listen: socket.socket, to: tuple[str, int]) -> None:
    """Relays every connection made to `listen` to `to`, both ways, until either side closes."""
    def pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    while True:
        try:
            client, _ = listen.accept()
        except OSError:
            return
        upstream = socket.create_connection(to)
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


@pytest.fixture(scope="module")
def endpoint() -> str:
    """The emulator as SAM's containers reach it. SAM 1.170 leaves containers on Docker's
    bridge whatever --docker-network says, and the emulator listens on loopback only: a relay
    on the bridge's host address carries their calls (and nothing else's) to it."""
    target = urllib.parse.urlsplit(os.environ["AWS_ENDPOINT_URL"])
    listen = socket.create_server((docker_gateway(), 0))
    threading.Thread(target=forward, args=(listen, (target.hostname, target.port)), daemon=True).start()
    host, port = listen.getsockname()[:2]
    yield f"http://{host}:{port}"
    listen.close()


@pytest.fixture(scope="module")
def env_vars(endpoint: str) -> str:
    """Every function's variables, pointed at the emulator (SAM resolves !Ref to logical ids otherwise)."""
    path = ROOT / ".test-run" / "sam-env.json"
    names = {k: os.environ[k] for k in ("TABLE_NAME", "BUCKET_NAME", "QUEUE_URL")}
    path.write_text(json.dumps({"Parameters": {"AWS_ENDPOINT_URL": endpoint, **names}}))
    return str(path)


def common(env_vars: str) -> list[str]:
    return ["--template", os.environ["SAM_TEMPLATE"], "--invoke-image", os.environ["SAM_IMAGE"],
            "--skip-pull-image", "--env-vars", env_vars]


@pytest.fixture(scope="module")
def sam_invoke(env_vars: str):
    return lambda function, event: invoke(function, event, env_vars)


def invoke(function: str, event: str | dict, env_vars: str) -> dict | None:
    """`sam local invoke FUNCTION -e EVENT`: the function's answer (SAM prints it last on stdout)."""
    if isinstance(event, dict):
        path = ROOT / ".test-run" / "sam-event.json"
        path.write_text(json.dumps(event))
        event = str(path)
    else:
        event = str(EVENTS / event)
    out = subprocess.run(["sam", "local", "invoke", function, "--event", event, *common(env_vars)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"sam local invoke {function}: {out.stderr[-3000:]}"
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    assert lines, f"no answer from {function}: {out.stderr[-3000:]}"
    return json.loads(lines[-1])


def body(resp: dict) -> dict:
    return json.loads(resp["body"])


def test_each_function_with_its_events(sam_invoke):
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
