"""Defects found by a review that attacked the AI gateway the way users and attackers do, each pinned here.

The provider is this module's own scripted server (``Scripted``), so that a test can make it misbehave in
ways the shared mock does not (an error event in the middle of a native stream, a stream that ends before
its last event); every provider of ``harness.gateway_config`` points at it. The model name picks the
script:

  anth-error     Anthropic stream: message_start, one text delta, then an ``error`` event (overloaded)
  anth-short     Anthropic stream: message_start, one text delta, then the body ends cleanly (no message_stop)
  resp-failed    Responses stream: response.created, one delta, then ``response.failed``
  otherwise      a normal answer: "hi" (Anthropic Messages, Responses or Chat Completions, streamed or whole)

Every request the server got is kept in ``Scripted.seen`` (path and JSON body).
"""

import http.client
import json
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

PROVIDER = None
GATEWAY = None
USAGE = {"input_tokens": 7, "output_tokens": 5}


def sse(name, data):
    return f"event: {name}\ndata: {json.dumps(dict(data, type=name))}\n\n".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": len(raw)}
        Scripted.seen.append({"path": self.path, "body": body})
        model = body.get("model", "") if isinstance(body, dict) else ""
        if self.path.endswith("/v1/messages"):
            return self.anthropic(model, body)
        if self.path.endswith("/responses"):
            return self.responses_api(model, body)
        if self.path.endswith("/chat/completions"):
            return self.chat(model, body)
        self.whole(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    def whole(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, events):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for e in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(e), e))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def anthropic(self, model, body):
        message = {"id": "msg_s", "type": "message", "role": "assistant", "model": model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": dict(USAGE, output_tokens=1)}
        if not body.get("stream"):
            return self.whole(200, dict(message, content=[{"type": "text", "text": "hi"}], stop_reason="end_turn",
                                        usage=USAGE))
        events = [sse("message_start", {"message": message}),
                  sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
                  sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "hi"}})]
        if "anth-error" in model:
            events.append(sse("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}}))
        elif "anth-short" not in model:
            events += [sse("content_block_stop", {"index": 0}),
                       sse("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                             "usage": {"output_tokens": 5}}),
                       sse("message_stop", {})]
        self.stream(events)

    def responses_api(self, model, body):
        resp = {"id": "resp_s", "object": "response", "created_at": 1, "status": "in_progress", "model": model,
                "output": [], "usage": None}
        if not body.get("stream"):
            done = dict(resp, status="completed", usage={"input_tokens": 7, "output_tokens": 5, "total_tokens": 12},
                        output=[{"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                                 "content": [{"type": "output_text", "text": "hi", "annotations": []}]}])
            return self.whole(200, done)
        seq = iter(range(100))
        ev = lambda name, data: sse(name, dict(data, sequence_number=next(seq)))  # noqa: E731
        events = [ev("response.created", {"response": resp}),
                  ev("response.output_text.delta", {"item_id": "msg_1", "output_index": 0, "content_index": 0,
                                                    "delta": "hi"})]
        if "resp-failed" in model:
            failed = dict(resp, status="failed", error={"code": "server_error", "message": "The model failed"},
                          usage={"input_tokens": 7, "output_tokens": 1, "total_tokens": 8})
            events.append(ev("response.failed", {"response": failed}))
        else:
            events.append(ev("response.completed", {"response": dict(resp, status="completed", usage={
                "input_tokens": 7, "output_tokens": 5, "total_tokens": 12})}))
        self.stream(events)

    def chat(self, model, body):
        usage = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
        if not body.get("stream"):
            return self.whole(200, {"id": "c", "object": "chat.completion", "created": 1, "model": model,
                                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                                 "finish_reason": "stop"}], "usage": usage})
        head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model}
        chunks = [dict(head, choices=[{"index": 0, "delta": {"role": "assistant", "content": "hi"},
                                       "finish_reason": None}]),
                  dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])]
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(dict(head, choices=[], usage=usage))
        self.stream([f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"])


class Scripted:
    seen = []

    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def paths(self, suffix):
        return [r for r in Scripted.seen if r["path"].endswith(suffix)]


def setUpModule():
    global PROVIDER, GATEWAY
    PROVIDER, GATEWAY = harness.start_module(provider=Scripted())


def tearDownModule():
    harness.stop_module(PROVIDER, GATEWAY)


def post(path, body, key=harness.CLIENT_KEY, headers=None):
    """(status, headers, body bytes) of a raw POST to the gateway."""
    conn = http.client.HTTPConnection("127.0.0.1", GATEWAY.port, timeout=20)
    try:
        h = {"content-type": "application/json", "x-api-key": key}
        h.update(headers or {})
        conn.request("POST", path, body=json.dumps(body) if not isinstance(body, bytes) else body, headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def events(raw):
    """The (event name, data JSON or text) of an SSE body."""
    out = []
    for block in raw.decode().split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
        if data is not None:
            try:
                data = json.loads(data)
            except ValueError:
                pass
            out.append((name, data))
    return out


class NativeStreamFailures(unittest.TestCase):
    """A native stream (Messages to Anthropic, Responses to OpenAI) that the provider ends with an error,
    or that ends before its last event, is a failed call: never stored in the AI cache and replayed to the
    next caller as if it were the answer, and a cut stream tells the client it was cut."""

    def twice(self, path, body, provider_path):
        before = len(PROVIDER.paths(provider_path))
        for _ in range(2):
            status, headers, raw = post(path, body)
            self.assertEqual(status, 200, raw)
            self.assertNotEqual(headers.get("x-cache"), "HIT", f"a failed stream was replayed from the cache: {raw}")
        self.assertEqual(len(PROVIDER.paths(provider_path)) - before, 2, "both calls reach the provider")
        return raw

    def test_anthropic_error_event_is_not_cached(self):
        body = {"model": "claude/anth-error", "max_tokens": 50, "temperature": 0, "stream": True,
                "messages": [{"role": "user", "content": "cache me if you can"}]}
        raw = self.twice("/cached/v1/messages", body, "/v1/messages")
        self.assertEqual(events(raw)[-1][0], "error", raw)

    def test_responses_failed_event_is_not_cached(self):
        body = {"model": "oai/resp-failed", "input": "cache me if you can", "temperature": 0, "stream": True}
        raw = self.twice("/cached/v1/responses", body, "/responses")
        self.assertEqual(events(raw)[-1][0], "response.failed", raw)

    def test_a_cut_native_stream_is_not_cached_and_ends_with_an_error(self):
        body = {"model": "claude/anth-short", "max_tokens": 50, "temperature": 0, "stream": True,
                "messages": [{"role": "user", "content": "cut me short"}]}
        raw = self.twice("/cached/v1/messages", body, "/v1/messages")
        last = events(raw)[-1]
        self.assertEqual(last[0], "error", f"the client must learn that the stream was cut: {raw}")


class CacheKeys(unittest.TestCase):
    """What changes the answer's bytes is part of the AI cache's key."""

    def test_stream_options_include_usage_is_part_of_the_key(self):
        body = {"model": "oai/gpt-4o", "temperature": 0, "stream": True,
                "messages": [{"role": "user", "content": "usage or not"}]}
        status, _, raw = post("/cached/v1/chat/completions", body)
        self.assertEqual(status, 200, raw)
        self.assertFalse([d for _, d in events(raw) if isinstance(d, dict) and d.get("usage")],
                         "no usage chunk unless asked")
        asked = dict(body, stream_options={"include_usage": True})
        status, headers, raw = post("/cached/v1/chat/completions", asked)
        self.assertEqual(status, 200, raw)
        usage = [d for _, d in events(raw) if isinstance(d, dict) and d.get("usage")]
        self.assertTrue(usage, f"the client asked for the usage chunk (x-cache {headers.get('x-cache')}): {raw}")


class MessagesNative(unittest.TestCase):
    """A Messages request goes to an Anthropic provider as it is: blocks only Anthropic knows (a server
    tool's use and result, from Claude's web search) are no reason to refuse it."""

    def test_server_tool_blocks_reach_anthropic(self):
        history = [
            {"role": "user", "content": "What is new in Rust?"},
            {"role": "assistant", "content": [
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "rust"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
                    {"type": "web_search_result", "url": "https://blog.rust-lang.org", "title": "Rust Blog",
                     "encrypted_content": "abc", "page_age": None}]},
                {"type": "text", "text": "Rust 1.90 is out."}]},
            {"role": "user", "content": [{"type": "search_result", "source": "https://x", "title": "x",
                                          "content": [{"type": "text", "text": "x"}]},
                                         {"type": "text", "text": "And before that?"}]},
        ]
        body = {"model": "claude/claude-sonnet-4", "max_tokens": 50, "messages": history,
                "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
        before = len(PROVIDER.paths("/v1/messages"))
        status, _, raw = post("/v1/messages", body)
        self.assertEqual(status, 200, raw)
        sent = PROVIDER.paths("/v1/messages")[before:]
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["body"]["messages"], history, "the body goes through as it is")
        # A provider that does not speak Messages cannot take these blocks: refused, naming them.
        status, _, raw = post("/v1/messages", dict(body, model="oai/gpt-4o", tools=[]))
        self.assertEqual(status, 400, raw)
        self.assertIn("server_tool_use", raw.decode())


class Multipart(unittest.TestCase):
    """A transcription form is parsed and sent on field by field: a 1 MB form of 20,000 empty fields once
    overflowed the stack of the worker sending it and aborted the whole gateway."""

    def test_a_form_of_many_tiny_fields_is_refused_and_the_gateway_lives(self):
        part = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n\r\n'
        body = (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\noai/whisper-1\r\n'
                + part * 20_000 + b"--b--\r\n")
        try:
            status, _, raw = post("/v1/audio/transcriptions", body,
                                  headers={"content-type": "multipart/form-data; boundary=b"})
        except (ConnectionError, http.client.HTTPException) as e:
            self.fail(f"the gateway dropped the connection ({e!r}); its log:\n{GATEWAY.log(5)}")
        self.assertEqual(status, 400, raw)
        self.assertIn("fields", json.loads(raw)["error"]["message"])
        self.assertIsNone(GATEWAY.proc.poll(), "the gateway is still running")
        status, _, raw = post("/v1/chat/completions", {"model": "oai/gpt-4o", "messages": [
            {"role": "user", "content": "still there?"}]})
        self.assertEqual(status, 200, raw)


if __name__ == "__main__":
    unittest.main()
