"""Checks of the mock providers themselves (no gateway): every endpoint with urllib, the OpenAI endpoints
with the official ``openai`` SDK. Run: ``python -m unittest tests/ai/test_mock_providers.py -v``.

These make sure a failing gateway test points at the gateway, not at the mock.
"""

import http.client
import json
import sys
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import httpx  # noqa: E402  (installed with openai)
import openai  # noqa: E402

KEY = harness.PROVIDER_KEY
OPENAI_AUTH = {"Authorization": f"Bearer {KEY}"}
ANTHROPIC_AUTH = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
GEMINI_AUTH = {"x-goog-api-key": KEY}
HELLO = [{"role": "user", "content": "hi"}]


def sse_events(raw):
    """Parse an SSE body into [(event or None, data)], accepting \\n and \\r\\n line ends."""
    events, name, data = [], None, []
    for line in raw.decode().replace("\r\n", "\n").split("\n"):
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return events


class MockTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = harness.MockProviders().start()

    @classmethod
    def tearDownClass(cls):
        cls.mock.stop()

    def setUp(self):
        self.mock.reset()

    def call(self, method, path, body=None, headers=None):
        """(status, headers, raw body bytes) of one request to the mock."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.mock.url + path, data=data, method=method,
                                     headers=dict({"Content-Type": "application/json"}, **(headers or {})))
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json_call(self, *args, **kw):
        status, headers, raw = self.call(*args, **kw)
        return status, headers, json.loads(raw)


class TestAuthAndErrors(MockTestCase):
    def test_missing_or_wrong_key_is_401_in_each_shape(self):
        for headers in ({}, {"Authorization": "Bearer nope"}):
            st, _, body = self.json_call("POST", "/v1/chat/completions", {"model": "m", "messages": HELLO}, headers)
            self.assertEqual((st, body["error"]["code"]), (401, "invalid_api_key"))
        st, _, body = self.json_call("POST", "/v1/messages", {"model": "m", "max_tokens": 5, "messages": HELLO},
                                     {"x-api-key": "nope", "anthropic-version": "2023-06-01"})
        self.assertEqual((st, body["type"], body["error"]["type"]), (401, "error", "authentication_error"))
        st, _, body = self.json_call("POST", "/v1beta/models/g:generateContent", {"contents": []},
                                     {"x-goog-api-key": "nope"})
        self.assertEqual((st, body["error"]["code"], body["error"]["status"]), (401, 401, "UNAUTHENTICATED"))

    def test_anthropic_needs_version_header(self):
        st, _, body = self.json_call("POST", "/v1/messages", {"model": "m", "max_tokens": 5, "messages": HELLO},
                                     {"x-api-key": KEY})
        self.assertEqual((st, body["error"]["type"]), (400, "invalid_request_error"))
        self.assertIn("anthropic-version", body["error"]["message"])

    def test_scripted_failures(self):
        cases = [("/v1/chat/completions", {"messages": HELLO}, OPENAI_AUTH, lambda b: b["error"]["message"]),
                 ("/v1/messages", {"messages": HELLO, "max_tokens": 9}, ANTHROPIC_AUTH,
                  lambda b: b["error"]["message"]),
                 ("/v1beta/models/{m}:generateContent", {"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
                  GEMINI_AUTH, lambda b: b["error"]["message"])]
        for path, body, auth, msg in cases:
            with self.subTest(path=path):
                model = "x-fail-429"
                st, headers, resp = self.json_call("POST", path.format(m=model), dict(body, model=model), auth)
                self.assertEqual((st, headers["Retry-After"], msg(resp)), (429, "1", "rate limited by mock"))
                model = "x-fail-500"
                st, _, resp = self.json_call("POST", path.format(m=model), dict(body, model=model), auth)
                self.assertEqual(st, 500)
                self.assertTrue(msg(resp))
                model = "x-garbage"
                st, _, raw = self.call("POST", path.format(m=model), dict(body, model=model), auth)
                self.assertEqual((st, raw), (200, b"not json at all"))

    def test_anthropic_rejects_system_role_and_orphan_tool_result(self):
        msgs = [{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}]
        st, _, _ = self.json_call("POST", "/v1/messages", {"model": "m", "max_tokens": 5, "messages": msgs},
                                  ANTHROPIC_AUTH)
        self.assertEqual(st, 400)
        msgs = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}]
        st, _, body = self.json_call("POST", "/v1/messages", {"model": "m", "max_tokens": 5, "messages": msgs},
                                     ANTHROPIC_AUTH)
        self.assertEqual(st, 400)
        self.assertIn("tool_use_id", body["error"]["message"])

    def test_what_the_real_apis_refuse(self):
        """Roles out of turn, unknown fields, extended thinking's rules (mock_checks.py)."""
        a_user, a_bot = {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}
        anthropic = [({"messages": [a_bot, a_user]}, "first message"),
                     ({"messages": [a_user, a_user]}, "alternate"),
                     ({"messages": [a_user], "logprobs": True}, "logprobs"),
                     ({"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]}, "file"),
                     ({"messages": [a_user], "thinking": {"type": "enabled", "budget_tokens": 1024}}, "max_tokens"),
                     ({"messages": [a_user], "max_tokens": 5000, "temperature": 0.5,
                       "thinking": {"type": "enabled", "budget_tokens": 1024}}, "temperature")]
        for body, says in anthropic:
            with self.subTest(anthropic=says):
                st, _, resp = self.json_call("POST", "/v1/messages", dict({"model": "m", "max_tokens": 5}, **body),
                                             ANTHROPIC_AUTH)
                self.assertEqual(st, 400)
                self.assertIn(says, resp["error"]["message"])
        g_user, g_model = {"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "yo"}]}
        gemini = [({"contents": [g_model, g_user]}, "First content"),
                  ({"contents": [g_user, g_user]}, "alternate"),
                  ({"contents": [g_user], "generationConfig": {"reasoning_effort": "low"}}, "reasoning_effort"),
                  ({"contents": [{"role": "user", "parts": [{"text": "x", "cache_control": {}}]}]}, "cache_control")]
        for body, says in gemini:
            with self.subTest(gemini=says):
                st, _, resp = self.json_call("POST", "/v1beta/models/g:generateContent", body, GEMINI_AUTH)
                self.assertEqual(st, 400)
                self.assertIn(says, resp["error"]["message"])


class TestOpenAIFormat(MockTestCase):
    def test_chat_and_recording(self):
        st, _, body = self.json_call("POST", "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": HELLO},
                                     dict(OPENAI_AUTH, **{"X-Custom": "A"}))
        self.assertEqual(st, 200)
        self.assertEqual(body["choices"][0]["message"]["content"], "Hello from openai gpt-4o-mini")
        self.assertEqual(body["usage"]["prompt_tokens_details"]["cached_tokens"], 4)
        recs = self.mock.requests()
        self.assertEqual(len(recs), 1)
        self.assertEqual((recs[0]["method"], recs[0]["path"]), ("POST", "/v1/chat/completions"))
        self.assertEqual(recs[0]["headers"]["x-custom"], "A")
        self.assertEqual(recs[0]["body"]["messages"], HELLO)
        self.mock.reset()
        self.assertEqual(self.mock.requests(), [])

    def test_stream_usage_and_tool_round_trip(self):
        st, headers, raw = self.call("POST", "/v1/chat/completions", {
            "model": "m-tools", "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}},
            OPENAI_AUTH)
        self.assertEqual((st, headers["Content-Type"]), (200, "text/event-stream"))
        events = sse_events(raw)
        self.assertEqual(events[-1][1], "[DONE]")
        chunks = [json.loads(d) for _, d in events[:-1]]
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 5)
        args = {}
        for c in chunks[:-1]:
            for tc in c["choices"][0]["delta"].get("tool_calls", []):
                args[tc["index"]] = args.get(tc["index"], "") + tc["function"]["arguments"]
        self.assertEqual({i: json.loads(a) for i, a in args.items()}, {0: {"city": "Paris"}, 1: {"tz": "CET"}})
        self.assertEqual(chunks[-2]["choices"][0]["finish_reason"], "tool_calls")
        msgs = HELLO + [{"role": "assistant", "content": None, "tool_calls": []},
                        {"role": "tool", "tool_call_id": "call_mock_0", "content": "sunny"}]
        _, _, body = self.json_call("POST", "/v1/chat/completions", {"model": "m-tools", "messages": msgs},
                                    OPENAI_AUTH)
        self.assertEqual(body["choices"][0]["message"]["content"], "Tool said: sunny")

    def test_sdk_direct(self):
        client = openai.OpenAI(base_url=self.mock.url + "/v1", api_key=KEY, max_retries=0, timeout=10)
        r = client.chat.completions.create(model="gpt-4o", messages=HELLO)
        self.assertEqual(r.choices[0].message.content, "Hello from openai gpt-4o")
        self.assertEqual((r.usage.prompt_tokens, r.usage.completion_tokens), (11, 5))
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True,
                                                     stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertEqual(text, "Hello from openai gpt-4o")
        self.assertEqual(chunks[-1].usage.prompt_tokens, 11)
        r = client.chat.completions.create(model="m-tools", messages=HELLO)
        calls = r.choices[0].message.tool_calls
        self.assertEqual([(c.function.name, json.loads(c.function.arguments)) for c in calls],
                         [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})])
        e = client.embeddings.create(model="text-embedding-3-small", input=["a", "bcd"])  # base64 by default
        self.assertEqual([d.embedding for d in e.data], [[0.0, 1.0, 0.5, -0.25], [1.0, 3.0, 0.5, -0.25]])
        self.assertEqual(self.mock.requests("/v1/embeddings")[0]["body"]["encoding_format"], "base64")
        e = client.embeddings.create(model="text-embedding-3-small", input="xy", encoding_format="float")
        self.assertEqual(e.data[0].embedding, [0.0, 2.0, 0.5, -0.25])
        self.assertIn("gpt-4o-mini", [m.id for m in client.models.list()])
        with self.assertRaises(openai.RateLimitError) as cm:
            client.chat.completions.create(model="fail-429", messages=HELLO)
        self.assertEqual(cm.exception.body["message"], "rate limited by mock")
        with self.assertRaises(openai.AuthenticationError):
            openai.OpenAI(base_url=self.mock.url + "/v1", api_key="bad", max_retries=0).models.list()
        with self.assertRaises((openai.APIError, httpx.HTTPError)):
            for _ in client.chat.completions.create(model="m-cut", messages=HELLO, stream=True):
                pass

    def test_slow_stream_is_incremental(self):
        client = openai.OpenAI(base_url=self.mock.url + "/v1", api_key=KEY, max_retries=0, timeout=10)
        times = []
        for c in client.chat.completions.create(model="m-slow", messages=HELLO, stream=True):
            if c.choices and c.choices[0].delta.content:
                times.append(time.monotonic())
        self.assertEqual(len(times), 4)
        self.assertGreater(times[-1] - times[0], 0.8)


class TestAnthropicFormat(MockTestCase):
    def post(self, model, stream=False, messages=HELLO, **extra):
        return self.call("POST", "/v1/messages", dict({"model": model, "max_tokens": 50, "messages": messages,
                                                       "stream": stream}, **extra), ANTHROPIC_AUTH)

    def test_message(self):
        st, _, raw = self.post("claude-x", system="be brief")
        body = json.loads(raw)
        self.assertEqual((st, body["content"], body["stop_reason"]),
                         (200, [{"type": "text", "text": "Hello from anthropic claude-x"}], "end_turn"))
        self.assertEqual((body["usage"]["input_tokens"], body["usage"]["cache_read_input_tokens"]), (7, 4))
        self.assertEqual(self.mock.requests()[0]["body"]["system"], "be brief")

    def test_stream_event_sequence(self):
        st, _, raw = self.post("claude-x", stream=True)
        events = sse_events(raw)
        self.assertEqual([n for n, _ in events],
                         ["message_start", "ping", "content_block_start"] + ["content_block_delta"] * 4 +
                         ["content_block_stop", "message_delta", "message_stop"])
        for name, data in events:
            self.assertEqual(json.loads(data)["type"], name)
        text = "".join(json.loads(d)["delta"]["text"] for n, d in events if n == "content_block_delta")
        self.assertEqual(text, "Hello from anthropic claude-x")
        delta = json.loads(events[-2][1])
        self.assertEqual((delta["delta"]["stop_reason"], delta["usage"]["output_tokens"]), ("end_turn", 5))

    def test_tools_stream_and_tool_result(self):
        _, _, raw = self.post("claude-tools", stream=True)
        events = [json.loads(d) for _, d in sse_events(raw)]
        starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
        self.assertEqual([(b["type"], b.get("name")) for b in starts],
                         [("text", None), ("tool_use", "get_weather"), ("tool_use", "get_time")])
        parts = {}
        for e in events:
            if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta":
                parts.setdefault(e["index"], []).append(e["delta"]["partial_json"])
        self.assertGreater(len(parts[1]), 2)  # split in pieces
        self.assertEqual(json.loads("".join(parts[1])), {"city": "Paris"})
        self.assertEqual(json.loads("".join(parts[2])), {"tz": "CET"})
        self.assertEqual(json.loads(sse_events(raw)[-2][1])["delta"]["stop_reason"], "tool_use")
        msgs = HELLO + [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock_0", "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_0",
                                          "content": [{"type": "text", "text": "rain"}]}]}]
        st, _, raw = self.post("claude-tools", messages=msgs)
        self.assertEqual((st, json.loads(raw)["content"][0]["text"]), (200, "Tool said: rain"))

    def test_cut_stream_has_no_end(self):
        req = urllib.request.Request(self.mock.url + "/v1/messages", method="POST", headers=ANTHROPIC_AUTH,
                                     data=json.dumps({"model": "claude-cut", "max_tokens": 5, "messages": HELLO,
                                                      "stream": True}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            with self.assertRaises(http.client.IncompleteRead) as cm:
                r.read()
        self.assertIn(b"content_block_delta", cm.exception.partial)
        self.assertNotIn(b"message_stop", cm.exception.partial)


class TestGeminiFormat(MockTestCase):
    CONTENTS = [{"role": "user", "parts": [{"text": "hi"}]}]

    def test_generate_and_json(self):
        st, _, body = self.json_call("POST", "/v1beta/models/gemini-2.0-flash:generateContent",
                                     {"contents": self.CONTENTS, "systemInstruction": {"parts": [{"text": "s"}]}},
                                     GEMINI_AUTH)
        self.assertEqual(st, 200)
        self.assertEqual(body["candidates"][0]["content"]["parts"], [{"text": "Hello from gemini gemini-2.0-flash"}])
        self.assertEqual(body["usageMetadata"]["cachedContentTokenCount"], 4)
        _, _, body = self.json_call("POST", "/v1beta/models/g-json:generateContent", {"contents": self.CONTENTS},
                                    GEMINI_AUTH)
        self.assertEqual(json.loads(body["candidates"][0]["content"]["parts"][0]["text"]),
                         {"label": "positive", "score": 0.9})

    def test_stream(self):
        st, _, raw = self.call("POST", "/v1beta/models/g:streamGenerateContent?alt=sse",
                               {"contents": self.CONTENTS}, GEMINI_AUTH)
        self.assertIn(b"\r\n\r\n", raw)
        events = [json.loads(d) for _, d in sse_events(raw)]
        self.assertEqual("".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events),
                         "Hello from gemini g")
        self.assertEqual(events[-1]["candidates"][0]["finishReason"], "STOP")
        self.assertEqual(events[-1]["usageMetadata"]["promptTokenCount"], 11)
        self.assertTrue(all("usageMetadata" not in e for e in events[:-1]))
        self.assertEqual(self.mock.requests()[0]["path"], "/v1beta/models/g:streamGenerateContent?alt=sse")

    def test_tools_and_function_response(self):
        _, _, raw = self.call("POST", "/v1beta/models/g-tools:streamGenerateContent?alt=sse",
                              {"contents": self.CONTENTS}, GEMINI_AUTH)
        events = [json.loads(d) for _, d in sse_events(raw)]
        calls = [p["functionCall"] for e in events for p in e["candidates"][0]["content"]["parts"]]
        self.assertEqual(calls, [{"name": "get_weather", "args": {"city": "Paris"}},
                                 {"name": "get_time", "args": {"tz": "CET"}}])
        contents = self.CONTENTS + [
            {"role": "model", "parts": [{"functionCall": calls[0]}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "fog"}}}]}]
        _, _, body = self.json_call("POST", "/v1beta/models/g-tools:generateContent", {"contents": contents},
                                    GEMINI_AUTH)
        self.assertEqual(body["candidates"][0]["content"]["parts"][0]["text"], "Tool said: fog")

    def test_embed_and_cut(self):
        reqs = [{"model": "models/e", "content": {"parts": [{"text": t}]}} for t in ("ab", "cde")]
        st, _, body = self.json_call("POST", "/v1beta/models/e:batchEmbedContents", {"requests": reqs}, GEMINI_AUTH)
        self.assertEqual((st, body["embeddings"][1]["values"]), (200, [1.0, 3.0, 0.5, -0.25]))
        st, _, body = self.json_call("POST", "/v1beta/models/other:batchEmbedContents", {"requests": reqs},
                                     GEMINI_AUTH)
        self.assertEqual((st, body["error"]["status"]), (400, "INVALID_ARGUMENT"))
        req = urllib.request.Request(self.mock.url + "/v1beta/models/g-cut:streamGenerateContent?alt=sse",
                                     method="POST", headers=GEMINI_AUTH,
                                     data=json.dumps({"contents": self.CONTENTS}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            with self.assertRaises(http.client.IncompleteRead) as cm:
                r.read()
        self.assertIn(b"Hello", cm.exception.partial)
        self.assertNotIn(b"finishReason", cm.exception.partial)


if __name__ == "__main__":
    unittest.main()
