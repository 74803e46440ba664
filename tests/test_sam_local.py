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

import pytest
from lambda_events import acknowledge, api_event, sqs_batch

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

for var in ("AWS_ENDPOINT_URL", "QUEUE_URL", "SAM_TEMPLATE", "SAM_IMAGE", "SAM_ENV_VARS"):
    if not os.environ.get(var):
        pytest.exit(f"{var} is not set: run `make test`, or see this file's docstring", returncode=2)


@pytest.fixture(scope="module")
def env_vars() -> str:
    """The variables file infra/sam-local.sh wrote: the emulator through its relay on Docker's bridge."""
    return os.environ["SAM_ENV_VARS"]


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
    page = sam_invoke("ListFunction", "page.json")
    assert page["statusCode"] == 200 and "content-security-policy" in page["headers"], page
    missing = sam_invoke("ListFunction", "get-missing.json")
    assert (missing["statusCode"], body(missing)["error"]["code"]) == (404, "not_found")
    assert sam_invoke("ProcessorFunction", "sqs-s3-test-event.json") == {"batchItemFailures": []}
    swept = sam_invoke("ProcessorFunction", "schedule-sweep.json")
    assert set(swept) == {"expired_leases", "arrived", "waiting"}, swept


def test_an_upload_through_the_three_functions_in_containers(sam_invoke):
    data = b"id,name\n1,picasso\n" * 50
    resp = sam_invoke("UploadFunction", api_event("POST", "/upload", {"filename": "t.csv", "content_type": "text/csv", "size": len(data)}))
    assert resp["statusCode"] == 201, resp
    file = body(resp)
    put = urllib.request.Request(file["upload"]["url"], data=data, method="PUT", headers=file["upload"]["headers"])
    assert urllib.request.urlopen(put).status == 200
    # The notification the emulator's queue received, as Lambda's poller would hand it over.
    deadline = time.time() + 120
    while True:
        got = body(sam_invoke("ListFunction", api_event("GET", f"/files/{file['id']}")))
        if got["status"] == "processed":
            break
        assert time.time() < deadline, got
        deliver(sam_invoke)
    assert (got["size"], got["detected_type"]) == (len(data), "text/csv"), got


# The stack's parameters the page's settings come from (a hosted UI, another admin group).
PAGE_PARAMETERS = "CognitoDomainPrefix=picasso-demo CallbackUrls=https://app.example.com/ AdminGroup=curators"


@pytest.fixture(scope="module")
def start_api(env_vars: str):
    """`sam local start-api` on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(ROOT / ".test-run" / "sam-start-api.log", "w")
    proc = subprocess.Popen(["sam", "local", "start-api", "--port", str(port), *common(env_vars),
                             "--parameter-overrides", PAGE_PARAMETERS],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert proc.poll() is None, "sam local start-api exited: see .test-run/sam-start-api.log"
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def call(base: str, method: str, path: str, token: str | None, payload: dict | None = None) -> tuple[int, dict]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(payload).encode() if payload is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, data=data, method=method, headers=headers)) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def deliver(sam_invoke) -> None:
    """The notifications the emulator's queue holds, to the processor, as Lambda's poller would."""
    batch = sqs_batch()
    if batch:
        assert sam_invoke("ProcessorFunction", batch) == {"batchItemFailures": []}
        acknowledge(batch)


def test_an_upload_through_sam_local_start_api(start_api, sam_invoke):
    # SAM runs Lambda authorizers, not JWT ones: the local template's dev authorizer takes
    # "Bearer NAME" as the caller NAME (infra/sam-authorizer), and the functions read its context.
    status, _ = call(start_api, "GET", "/files", None)
    assert status == 401, "no token, no call"
    data = b"served by sam local start-api\n" * 20
    status, file = call(start_api, "POST", "/upload", "alice", {"filename": "s.txt", "content_type": "text/plain", "size": len(data)})
    assert status == 201, file
    assert file["owner"] == "alice"
    put = urllib.request.Request(file["upload"]["url"], data=data, method="PUT", headers=file["upload"]["headers"])
    assert urllib.request.urlopen(put).status == 200
    deadline = time.time() + 120
    while True:
        status, got = call(start_api, "GET", f"/files/{file['id']}", "alice")
        assert status == 200, got
        if got["status"] == "processed":
            break
        assert time.time() < deadline, got
        deliver(sam_invoke)
    assert got["download_url"] and got["sha256"], got
    status, page = call(start_api, "GET", "/files?status=processed", "alice")
    assert status == 200 and file["id"] in [f["id"] for f in page["items"]], page
    status, _ = call(start_api, "GET", f"/files/{file['id']}", "bob")
    assert status == 404, "another user's file does not exist for them"
    status, doc = call(start_api, "GET", "/openapi.json", "alice")
    assert status == 200 and doc["openapi"].startswith("3.1"), doc


def test_the_dev_authorizer_refuses_to_start_outside_sam_local():
    """Deployed by mistake, `Bearer NAME` would let anyone in as anyone: outside SAM's local
    emulation (no AWS_SAM_LOCAL) the authorizer reports an init error and exits."""
    import http.server
    import threading

    posted: list[tuple[str, bytes]] = []

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            posted.append((self.path, self.rfile.read(int(self.headers.get("Content-Length", 0)))))
            self.send_response(202)
            self.end_headers()

        def do_GET(self):  # /next: an invocation it must never get to
            posted.append((self.path, b""))
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"PATH": os.environ["PATH"], "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}"}
        out = subprocess.run(["sh", str(ROOT / "infra/sam-authorizer/bootstrap")], env=env,
                             capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
    assert out.returncode != 0, out
    assert "only under sam local" in out.stderr
    assert [p for p, _ in posted] == ["/2018-06-01/runtime/init/error"], posted


def test_the_page_is_served_without_a_token_with_the_templates_settings(start_api):
    """GET / through `sam local start-api`: the list function serves the page, no token asked,
    its settings from the template's parameters, none from the URL, and its policy names them."""
    for query in ("", "?api=https://elsewhere.example&client_id=x&domain=evil.example&ws=wss://elsewhere.example/"):
        with urllib.request.urlopen(start_api + "/" + query) as r:
            assert r.status == 200
            assert r.headers["content-type"].startswith("text/html")
            html, csp = r.read().decode(), r.headers["content-security-policy"]
        assert "elsewhere.example" not in html and "evil.example" not in html, "nothing of the URL in the page"
        start = html.index('<script type="application/json" id="picasso-settings">')
        settings = json.loads(html[html.index(">", start) + 1:html.index("</script>", start)])
        auth = settings["auth"]
        assert auth["mode"] == "cognito", settings
        assert auth["domain"].startswith("picasso-demo.auth.") and auth["domain"].endswith(".amazoncognito.com"), auth
        assert auth["client_id"], auth
        assert settings["admin_group"] == "curators"
        assert settings["api"] is None, "the page calls the API that serves it"
        live = settings["live"]["websocket"]
        assert live.startswith("wss://") and live.endswith("/live"), settings
        connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
        assert f"https://{auth['domain']}" in connect.split(), csp
        assert "'unsafe-inline'" not in csp and "default-src 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
