"""The admin API against its own OpenAPI document, by schemathesis.

A ``portico`` in store mode on SQLite (a temporary directory) is seeded with a small config through
``portico import`` (an upstream; a service with ``subscription: manual`` and its route behind
``key_auth``; an application of team ``shop``) and, through the API, the teams, a user and a release
``v1`` of the service; three
calls through the gateway give the call log rows. Then
``schemathesis run`` reads ``/admin/v1/openapi.json`` and calls every operation with the bootstrap
admin token (``PORTICO_ADMIN_TOKEN``), checking that no answer is a server error, that every
status, content type, header and body is the one the document declares, and that auth, methods and
deletes hold (``CHECKS``).

The run is bounded (``MAX_EXAMPLES`` per operation, one worker) and seeded (``SEED``), so it is the
same run every time. Env: ``PORTICO_BIN`` (default ``target/debug/portico``), ``ADMIN_TEST_KEEP=1``
keeps the temporary directory, ``SCHEMATHESIS_MAX_EXAMPLES``, ``SCHEMATHESIS_SEED`` and ``SCHEMATHESIS_CHECKS`` override.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = os.environ.get("PORTICO_BIN", str(ROOT / "target" / "debug" / "portico"))
TOKEN = "schemathesis-admin-token"
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "19"))
#: The checks: no 5xx; every answer as the document declares it (status, content type, headers, body);
#: no operation served without the token; an undocumented method refused with 405 and its Allow header;
#: a deleted resource gone, a created one there.
CHECKS = os.environ.get("SCHEMATHESIS_CHECKS") or ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
])

SEED_CONFIG = """\
upstreams:
  backend:
    targets:
      - address: 127.0.0.1:9
services:
  - name: payments
    team: payments
    subscription: manual
routes:
  - name: pay
    service: payments
    paths: [/pay]
    upstream: backend
    policies:
      - key_auth: {}
consumers:
  - name: shop-app
    team: shop
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=TOKEN):
    """One admin API call: (status, parsed JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    return status, (json.loads(raw) if raw else None)


def wait_ready(url, proc, log, timeout=30.0):
    """Poll ``url`` until it answers 200; fail early when the process exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"portico exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"portico did not answer {url} within {timeout:.0f}s:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)  # poll interval, bounded by the deadline


@pytest.fixture(scope="module")
def gateway():
    """A seeded gateway in store mode; yields the admin API's base URL."""
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"no portico binary at {BIN}: build it (cargo build) or set PORTICO_BIN")
    tmp = Path(tempfile.mkdtemp(prefix="portico-admin-"))
    store = f"sqlite://{tmp / 'store.db'}"
    env = dict(os.environ, PORTICO_ADMIN_TOKEN=TOKEN, RUST_LOG="warn")
    (tmp / "seed.yaml").write_text(SEED_CONFIG)
    subprocess.run([BIN, "import", str(tmp / "seed.yaml"), "--store", store], env=env, check=True,
                   capture_output=True, timeout=60)
    admin = free_port()
    proxy = free_port()
    (tmp / "portico.yaml").write_text(f"""\
server:
  listeners:
    - address: 127.0.0.1:{proxy}
  admin: 127.0.0.1:{admin}
  threads: 1
  pid_file: {tmp}/portico.pid
  upgrade_sock: {tmp}/upgrade.sock
  store: '{store}'
  state_dir: {tmp}/state
""")
    log = tmp / "portico.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([BIN, "run", "-c", str(tmp / "portico.yaml")], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{admin}/admin/v1"
    try:
        wait_ready(f"{base}/openapi.json", proc, log)
        for path, body in [
            ("/users/ann", {"display_name": "Ann", "email": "ann@example.com", "password": "correct horse battery"}),
            ("/teams/payments", {"members": [{"user": "ann", "role": "service_admin"}]}),
            ("/teams/shop", {"description": "the shop"}),
        ]:
            status, answer = call(base, "PUT", path, body)
            assert status == 200, f"PUT {path}: {status} {answer}"
        # A release of the service, so the release routes' examples find one.
        status, answer = call(base, "POST", "/services/payments/releases", {"name": "v1", "note": "seed"})
        assert status == 201, f"POST a release: {status} {answer}"
        # A few calls, so the call log's pages and analytics have rows.
        for path in ["/pay", "/pay", "/nowhere"]:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{proxy}{path}", timeout=10)
            except urllib.error.HTTPError:
                pass
        deadline = time.monotonic() + 20
        while True:
            status, page = call(base, "GET", "/logs")
            if status == 200 and len(page["items"]) == 3:
                break
            assert time.monotonic() < deadline, f"the calls did not reach the call log: {status} {page}"
            time.sleep(0.1)  # poll interval, bounded by the deadline
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.returncode not in (0, -signal.SIGINT, -signal.SIGKILL):
            print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
        if os.environ.get("ADMIN_TEST_KEEP") == "1":
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def test_the_document_is_openapi_3_1_and_needs_no_token(gateway):
    with urllib.request.urlopen(f"{gateway}/openapi.json", timeout=10) as r:
        assert r.headers["Content-Type"] == "application/json"
        doc = json.load(r)
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer",
                                                             "description": doc["components"]["securitySchemes"]["bearer"]["description"]}
    assert "/admin/v1/services/{name}" in doc["paths"]
    put = doc["paths"]["/admin/v1/services/{name}"]["put"]
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in put["parameters"])
    assert "ETag" in put["responses"]["200"]["headers"]
    # Every operation but the document's own and the login needs the bearer token.
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if path in ("/admin/v1/openapi.json", "/admin/v1/login"):
                assert op["security"] == [{}], method
            else:
                assert op.get("security", doc["security"]) == [{"bearer": []}], (method, path)
    status, _ = call(gateway, "GET", "/services", token="wrong")
    assert status == 401


def test_every_operation_conforms_to_the_document(gateway, tmp_path):
    cli = Path(sys.executable).with_name("schemathesis")
    cmd = [
        str(cli), "run", f"{gateway}/openapi.json",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",
        "--generation-database", "none",
        "--request-timeout", "30",
        "--report", "junit", "--report-dir", str(tmp_path),
        "--no-color",
    ]
    started = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    print(run.stdout[-20000:])
    print(run.stderr[-4000:], file=sys.stderr)
    print(f"schemathesis took {time.monotonic() - started:.0f}s", file=sys.stderr)
    assert run.returncode == 0, "schemathesis found problems (above)"
