"""A service as MCP tools, driven by the official MCP Python SDK (``mcp`` on PyPI).

One ``portico`` in file mode and a small pet-store upstream (Python's ``http.server``) are started for
the module. The service ``pets`` has an OpenAPI document and ``subscription: manual``; its route
``pets-mcp`` serves the document's operations as MCP tools at ``/mcp/pets`` behind ``key_auth``.
The application ``shop`` has an approved subscription, ``waiting`` a pending one. The call log is on,
read with the admin token the first start writes to ``state_dir/admin-token``.

Everything waits with deadlines (the gateway's readiness, the call log's writer), never fixed sleeps.

Env: ``PORTICO_BIN`` (default ``target/debug/portico``), ``MCP_TEST_KEEP=1`` keeps the temporary
directory and prints where.
"""

import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from mcp import ClientSession, MCPError
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = os.environ.get("PORTICO_BIN", str(ROOT / "target" / "debug" / "portico"))
DEADLINE = 30.0
SHOP_KEY = "mcp-test-shop-key"
WAITING_KEY = "mcp-test-waiting-key"
ROUTE = "pets-mcp"
ENDPOINT = "/mcp/pets"

PETS = {"1": {"id": 1, "name": "Rex", "tag": "dog"}, "2": {"id": 2, "name": "Tom", "tag": "cat"}}

OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "Pet store", "version": "1.0.0"},
    "paths": {
        "/pets": {
            "get": {
                "operationId": "listPets",
                "summary": "List the pets",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}, "description": "At most this many"},
                    {"name": "tag", "in": "query", "schema": {"type": "string"}},
                ],
            },
            "post": {
                "operationId": "createPet",
                "summary": "Add a pet",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}},
                },
            },
        },
        "/pets/{petId}": {
            "parameters": [{"name": "petId", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"operationId": "getPet", "summary": "One pet", "description": "By its id."},
            "delete": {"operationId": "deletePet"},
        },
    },
    "components": {
        "schemas": {
            "NewPet": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "tag": {"$ref": "#/components/schemas/Tag"}},
            },
            "Tag": {"type": "string", "enum": ["dog", "cat"]},
        }
    },
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(what, check, deadline=DEADLINE):
    """Polls ``check`` until it returns a true value, or fails after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline}s: {what} (last: {got!r})")
        time.sleep(0.1)  # poll interval, bounded by the deadline above


class PetStore(BaseHTTPRequestHandler):
    """The upstream: GET /pets, GET and DELETE /pets/{id}, POST /pets; every request is kept in ``seen``."""

    seen = []

    def _reply(self, status, body):
        raw = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        PetStore.seen.append(
            {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
             "body": body}
        )
        path = urlsplit(self.path).path
        if path == "/pets" and self.command == "GET":
            return self._reply(200, {"pets": list(PETS.values())})
        if path == "/pets" and self.command == "POST":
            pet = json.loads(body)
            return self._reply(201, {"id": 3, **pet})
        if path.startswith("/pets/"):
            pet = PETS.get(path[len("/pets/"):])
            if pet is None:
                return self._reply(404, {"error": f"no pet {path[len('/pets/'):]}"})
            if self.command == "DELETE":
                return self._reply(204, None)
            return self._reply(200, pet)
        return self._reply(404, {"error": "no such path"})

    do_GET = do_POST = do_DELETE = _handle

    def log_message(self, *args):
        pass


class Gateway:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port, self.admin_port = free_port(), free_port()
        self.upstream = ThreadingHTTPServer(("127.0.0.1", 0), PetStore)
        threading.Thread(target=self.upstream.serve_forever, daemon=True).start()
        sha = lambda k: hashlib.sha256(k.encode()).hexdigest()  # noqa: E731
        config = {
            "server": {
                "listeners": [{"address": f"127.0.0.1:{self.port}"}],
                "threads": 1,
                "admin": f"127.0.0.1:{self.admin_port}",
                "access_log": {"path": str(tmp / "access.log")},
                "state_dir": str(tmp / "state"),
                "call_log": {"url": f"sqlite://{tmp / 'calls.db'}"},
                "pid_file": str(tmp / "portico.pid"),
                "upgrade_sock": str(tmp / "upgrade.sock"),
                "grace_period": "1s",
                "graceful_shutdown_timeout": "1s",
            },
            "upstreams": {"pets": {"targets": [{"address": f"127.0.0.1:{self.upstream.server_address[1]}"}]}},
            "services": [{"name": "pets", "team": "zoo", "subscription": "manual",
                          "description": "The pet store: list, read, add and remove pets.", "openapi": OPENAPI}],
            "routes": [{"name": ROUTE, "service": "pets", "paths": [ENDPOINT], "upstream": "pets", "mcp": {},
                        "policies": [{"key_auth": {}}]}],
            "consumers": [
                {"name": "shop", "team": "apps", "credentials": {"api_keys": [{"id": "main", "sha256": sha(SHOP_KEY)}]}},
                {"name": "waiting", "team": "apps",
                 "credentials": {"api_keys": [{"id": "main", "sha256": sha(WAITING_KEY)}]}},
            ],
            "subscriptions": [
                {"application": "shop", "service": "pets", "status": "approved"},
                {"application": "waiting", "service": "pets", "status": "pending"},
            ],
        }
        cfg = tmp / "portico.yaml"
        cfg.write_text(json.dumps(config, indent=2))  # JSON is YAML
        check = subprocess.run([BIN, "check", "-c", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.log = open(tmp / "portico.log", "w")
        env = dict(os.environ, RUST_LOG="warn")
        env.pop("PORTICO_ADMIN_TOKEN", None)
        self.proc = subprocess.Popen([BIN, "run", "-c", str(cfg)], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + ENDPOINT
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        until("the gateway is ready", self.ready)
        self.token = (tmp / "state" / "admin-token").read_text().strip()

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"portico exited: {(self.tmp / 'portico.log').read_text()}")
        try:
            return httpx2.get(f"{self.admin}/readyz", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False

    def logs(self, query):
        r = httpx2.get(f"{self.admin}/admin/v1/logs?{query}", headers={"authorization": f"Bearer {self.token}"})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.upstream.shutdown()
        self.log.close()


@pytest.fixture(scope="module")
def gw():
    tmp = Path(tempfile.mkdtemp(prefix="portico-mcp-"))
    g = Gateway(tmp)
    try:
        yield g
    finally:
        g.stop()
        if os.environ.get("MCP_TEST_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def leaves(e):
    """The exceptions at the leaves of an exception group (anyio's task groups wrap what they raise)."""
    if isinstance(e, BaseExceptionGroup):
        return [x for sub in e.exceptions for x in leaves(sub)]
    return [e]


def http_client(key):
    return httpx2.AsyncClient(headers={"x-api-key": key} if key else {}, timeout=20)


def rpc(gw, body, key=SHOP_KEY, headers=None):
    """One raw POST of ``body`` (JSON, or bytes as they are) to the endpoint."""
    h = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    if key:
        h["x-api-key"] = key
    h.update(headers or {})
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx2.post(gw.url, content=content, headers=h, timeout=20)


def test_the_sdk_lists_the_operations_as_tools(gw):
    async def main():
        # The high-level client probes `server/discover` first and falls back to `initialize`.
        async with http_client(SHOP_KEY) as http:
            async with Client(streamable_http_client(gw.url, http_client=http)) as client:
                assert client.server_info.name == "portico"
                assert client.protocol_version == "2025-11-25"
                assert client.server_capabilities.tools is not None
                assert client.instructions == "The pet store: list, read, add and remove pets."
                return (await client.list_tools()).tools

    tools = {t.name: t for t in asyncio.run(main())}
    assert sorted(tools) == ["createPet", "deletePet", "getPet", "listPets"]
    get = tools["getPet"]
    assert get.description == "One pet\n\nBy its id."
    assert get.title == "One pet"
    assert get.input_schema == {
        "type": "object",
        "properties": {"petId": {"type": "string"}},
        "required": ["petId"],
        "additionalProperties": False,
    }
    assert get.annotations.read_only_hint is True
    listing = tools["listPets"].input_schema
    assert listing["properties"]["limit"] == {"type": "integer", "description": "At most this many"}
    assert "required" not in listing
    # The body's schema, its $refs inlined.
    body = tools["createPet"].input_schema["properties"]["body"]
    assert body == {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "tag": {"type": "string", "enum": ["dog", "cat"]}},
    }
    assert tools["createPet"].input_schema["required"] == ["body"]
    assert tools["deletePet"].annotations.destructive_hint is True


def test_tool_calls_reach_the_upstream(gw):
    async def main():
        async with http_client(SHOP_KEY) as http:
            async with streamable_http_client(gw.url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    assert init.server_info.name == "portico"
                    await session.send_ping()
                    one = await session.call_tool("getPet", {"petId": "1"})
                    created = await session.call_tool("createPet", {"body": {"name": "Kit", "tag": "cat"}})
                    listed = await session.call_tool("listPets", {"limit": 1, "tag": "a b&c"})
                    odd = await session.call_tool("getPet", {"petId": "x/../y"})
                    return one, created, listed, odd

    PetStore.seen.clear()
    one, created, listed, odd = asyncio.run(main())
    assert one.is_error is False
    assert json.loads(one.content[0].text) == PETS["1"]
    assert one.structured_content == PETS["1"]
    assert created.is_error is False
    assert created.structured_content == {"id": 3, "name": "Kit", "tag": "cat"}
    assert listed.is_error is False
    seen = {(s["method"], s["path"]): s for s in PetStore.seen}
    assert set(seen) == {("GET", "/pets/1"), ("POST", "/pets"), ("GET", "/pets?limit=1&tag=a%20b%26c"),
                         ("GET", "/pets/x%2F..%2Fy")}
    post = seen[("POST", "/pets")]
    assert json.loads(post["body"]) == {"name": "Kit", "tag": "cat"}
    assert post["headers"]["content-type"] == "application/json"
    for s in PetStore.seen:
        # The gateway names the application; the client's key never reaches the upstream.
        assert s["headers"]["x-consumer"] == "shop"
        assert "x-api-key" not in s["headers"]
        assert s["headers"]["x-request-id"]
    # The encoded slash stayed in its segment: no such pet.
    assert odd.is_error is True


def test_an_upstream_error_is_a_tool_error(gw):
    async def main():
        async with http_client(SHOP_KEY) as http:
            async with Client(streamable_http_client(gw.url, http_client=http), mode="legacy") as client:
                missing = await client.call_tool("getPet", {"petId": "99"})
                deleted = await client.call_tool("deletePet", {"petId": "2"})
                return missing, deleted

    missing, deleted = asyncio.run(main())
    assert missing.is_error is True
    assert json.loads(missing.content[0].text) == {"error": "no pet 99"}
    assert deleted.is_error is False
    assert deleted.content[0].text == "HTTP 204"


def test_bad_calls_are_json_rpc_errors(gw):
    async def main():
        async with http_client(SHOP_KEY) as http:
            async with Client(streamable_http_client(gw.url, http_client=http), mode="legacy") as client:
                codes = []
                for name, args in [("nope", {}), ("getPet", {}), ("getPet", {"petId": "1", "extra": 1})]:
                    with pytest.raises(MCPError) as e:
                        await client.call_tool(name, args)
                    codes.append((e.value.code, e.value.error.message))
                return codes

    codes = asyncio.run(main())
    assert [c for c, _ in codes] == [-32602, -32602, -32602]
    assert "unknown tool" in codes[0][1]
    assert "missing required argument" in codes[1][1]
    assert "extra" in codes[2][1]


def test_without_a_key_the_gateway_refuses_with_its_own_error(gw):
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    r = rpc(gw, init, key=None)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.headers["x-request-id"]

    async def main():
        async with http_client(None) as http:
            async with Client(streamable_http_client(gw.url, http_client=http), mode="legacy"):
                pass

    # The SDK's client fails to connect with the transport's error for a refusal without JSON-RPC.
    with pytest.raises(BaseException) as e:
        asyncio.run(main())
    assert any(isinstance(x, MCPError) for x in leaves(e.value)), e.value
    # A pending subscription: the gateway's 403, naming why.
    r = rpc(gw, init, key=WAITING_KEY)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "subscription_pending"
    # A key that is no application's.
    assert rpc(gw, init, key="not-a-key").status_code == 401


def test_the_transport_edges(gw):
    init = {"jsonrpc": "2.0", "id": "i", "method": "initialize", "params": {"protocolVersion": "1999-01-01"}}
    r = rpc(gw, init)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["result"]["protocolVersion"] == "2025-11-25"
    assert "mcp-session-id" not in r.headers
    # Notifications and responses: 202, no body.
    r = rpc(gw, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert (r.status_code, r.content) == (202, b"")
    # No stream to open, no session to end.
    for method in ("GET", "DELETE"):
        r = httpx2.request(method, gw.url, headers={"x-api-key": SHOP_KEY})
        assert r.status_code == 405 and r.headers["allow"] == "POST"
        assert r.json()["error"]["code"] == "method_not_allowed"
    r = rpc(gw, b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700
    r = rpc(gw, {"jsonrpc": "2.0", "id": 5, "method": "resources/list"})
    assert r.status_code == 200 and r.json() == {"jsonrpc": "2.0", "id": 5, "error": r.json()["error"]}
    assert r.json()["error"]["code"] == -32601
    r = rpc(gw, {"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, headers={"mcp-protocol-version": "2001-01-01"})
    assert r.status_code == 400
    # A batch: one answer per request, none for the notification.
    r = rpc(gw, [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "method": "notifications/x"},
                 {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "getPet", "arguments": {"petId": "2"}}}])
    answers = r.json()
    assert [a["id"] for a in answers] == [1, 2]
    assert answers[1]["result"]["structuredContent"] == PETS["2"]
    # A browser page of another origin is refused; the server's own is not.
    r = rpc(gw, {"jsonrpc": "2.0", "id": 7, "method": "ping"}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = rpc(gw, {"jsonrpc": "2.0", "id": 8, "method": "ping"}, headers={"origin": gw.base})
    assert r.status_code == 200


def test_calls_are_in_the_call_log(gw):
    r = rpc(gw, {"jsonrpc": "2.0", "id": "log", "method": "tools/call",
                 "params": {"name": "getPet", "arguments": {"petId": "1"}}})
    request_id = r.headers["x-request-id"]
    rpc(gw, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, key=WAITING_KEY)
    call = until("the tool call is in the call log",
                 lambda: next(iter(gw.logs(f"request_id={request_id}")), None))
    assert (call["route"], call["service"], call["application"], call["status"]) == (ROUTE, "pets", "shop", 200)
    assert (call["mcp_tool"], call["upstream"], call["method"]) == ("getPet", "pets", "POST")
    assert call["target"] == f"127.0.0.1:{gw.upstream.server_address[1]}"
    assert call["upstream_ms"] is not None
    assert call["error"] is None
    by_tool = gw.logs(f"route={ROUTE}&mcp_tool=createPet")
    assert by_tool and all(c["mcp_tool"] == "createPet" for c in by_tool)
    refused = until("the refusal is in the call log",
                    lambda: gw.logs(f"route={ROUTE}&application=waiting&status=403"))
    assert refused[0]["error"] == "subscription_pending"
    # The access log has the tool too.
    lines = [json.loads(l) for l in (gw.tmp / "access.log").read_text().splitlines() if l.strip()]
    assert any(l.get("mcp_tool") == "getPet" and l["request_id"] == request_id for l in lines)
