"""End-to-end tests of Portico's AI gateway with the official ``openai`` Python SDK.

One mock provider server (``mock_providers.py``) and one ``portico run`` are started for the module
(``harness.py`` writes the config: providers ``oai``/``claude``/``gem`` on the mock, aliases
``claude-sonnet``, ``gemini-flash``, ``resilient``, and ``key_auth`` with the client key in ``x-api-key``).
The SDK talks OpenAI's Chat Completions / Embeddings / Models API to Portico; the tests check both what the
SDK gets back and what the mock received (the provider's own wire format, the provider key, and that the
client's credentials were not forwarded).

Skips only when the binary does not know the ``ai`` config section (``portico check`` says unknown field
`ai`); a missing binary or any other problem is a failure. Binary: env ``PORTICO_BIN`` or
``target/debug/portico``.
"""

import json
import sys
import time
import unittest
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import httpx  # noqa: E402  (installed with openai)
import openai  # noqa: E402

MOCK = None
GATEWAY = None
SYSTEM = "You are terse."
QUESTION = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Say hello"}]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Time in a zone",
                                      "parameters": {"type": "object", "properties": {"tz": {"type": "string"}},
                                                     "required": ["tz"]}}},
]
EXPECTED_CALLS = [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
TOOL_OUTPUTS = {"get_weather": "sunny, 21C", "get_time": "10:00"}

# Per provider: the model names a client uses, and what the mock sees.
PROVIDERS = {
    "anthropic": {"model": "claude-sonnet", "upstream": "claude-sonnet-4", "prefix": "claude/claude-"},
    "gemini": {"model": "gem/gemini-2.0-flash", "upstream": "gemini-2.0-flash", "prefix": "gem/gemini-"},
}


def setUpModule():
    global MOCK, GATEWAY
    MOCK, GATEWAY = harness.start_module()


def tearDownModule():
    harness.stop_module(MOCK, GATEWAY)


def client(key=harness.CLIENT_KEY, **kw):
    """An OpenAI SDK client for Portico with the client's key as `api_key`, plainly (sent as Bearer)."""
    return openai.OpenAI(base_url=GATEWAY.url + "/v1", api_key=key, max_retries=0, timeout=20, **kw)


class GatewayTest(unittest.TestCase):
    """Resets the mock's record before each test; helpers to read what the providers got."""

    def setUp(self):
        MOCK.reset()
        self.client = client()

    def received(self, provider):
        """Requests the mock got in ``provider``'s format (anthropic, gemini, openai), in order."""
        prefix = {"anthropic": "/v1/messages", "gemini": "/v1beta/", "openai": "/v1/"}[provider]
        recs = [r for r in MOCK.requests(prefix) if provider != "openai" or not r["path"].startswith("/v1/messages")]
        self.assertTrue(recs, f"the mock got no {provider} request; portico log:\n{GATEWAY.log()}")
        return recs

    def assert_provider_auth(self, provider, rec):
        """The provider key is set the provider's way; the client's own credentials are gone."""
        h = rec["headers"]
        if provider == "anthropic":
            self.assertEqual(h.get("x-api-key"), harness.PROVIDER_KEY)
            self.assertTrue(h.get("anthropic-version"))
        elif provider == "gemini":
            self.assertEqual(h.get("x-goog-api-key"), harness.PROVIDER_KEY)
            self.assertNotIn("x-api-key", h)
        else:
            self.assertEqual(h.get("authorization"), f"Bearer {harness.PROVIDER_KEY}")
        if provider != "openai":
            self.assertNotIn("authorization", h)
        for name, value in h.items():
            self.assertNotIn(harness.CLIENT_KEY, value, f"client key forwarded in {name}")
            self.assertNotIn(harness.CLIENT_BEARER, value, f"client bearer forwarded in {name}")

    def stream(self, **kw):
        """[(monotonic time, chunk)] of a streamed chat completion."""
        return [(time.monotonic(), c) for c in self.client.chat.completions.create(stream=True, **kw)]


def system_text(provider, body):
    """The system prompt as the provider got it (Anthropic `system`, Gemini `systemInstruction`)."""
    if provider == "anthropic":
        s = body.get("system")
        return s if isinstance(s, str) else "".join(b.get("text", "") for b in s or [])
    return "".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))


class TestChat(GatewayTest):
    def test_non_streaming(self):
        for provider, p in PROVIDERS.items():
            with self.subTest(provider=provider):
                MOCK.reset()
                r = self.client.chat.completions.create(model=p["model"], messages=QUESTION)
                self.assertEqual(r.object, "chat.completion")
                self.assertEqual(r.choices[0].message.content, f"Hello from {provider} {p['upstream']}")
                self.assertEqual(r.choices[0].message.role, "assistant")
                self.assertEqual(r.choices[0].finish_reason, "stop")
                self.assertEqual((r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens),
                                 (11, 5, 16))
                self.assertEqual(r.usage.prompt_tokens_details.cached_tokens, 4)
                rec = self.received(provider)[-1]
                body = rec["body"]
                self.assertEqual(system_text(provider, body), SYSTEM)
                if provider == "anthropic":
                    self.assertEqual(rec["path"], "/v1/messages")
                    self.assertEqual(body["model"], "claude-sonnet-4")
                    self.assertEqual(body["messages"][0]["role"], "user")
                    self.assertIsInstance(body["max_tokens"], int)
                else:
                    self.assertEqual(rec["path"], "/v1beta/models/gemini-2.0-flash:generateContent")
                    self.assertEqual(body["contents"][0]["role"], "user")
                    self.assertEqual(body["contents"][0]["parts"][0]["text"], "Say hello")
                    self.assertNotIn("systemInstruction", json.dumps(body["contents"]))
                self.assert_provider_auth(provider, rec)

    def test_openai_provider_and_aliases(self):
        r = self.client.chat.completions.create(model="oai/gpt-4o-mini", messages=QUESTION)
        self.assertEqual(r.choices[0].message.content, "Hello from openai gpt-4o-mini")
        rec = self.received("openai")[-1]
        self.assertEqual((rec["path"], rec["body"]["model"]), ("/v1/chat/completions", "gpt-4o-mini"))
        self.assertEqual(rec["body"]["messages"][0], {"role": "system", "content": SYSTEM})
        self.assert_provider_auth("openai", rec)
        r = self.client.chat.completions.create(model="gemini-flash", messages=QUESTION)  # alias
        self.assertEqual(r.choices[0].message.content, "Hello from gemini gemini-2.0-flash")

    def test_models_list_has_aliases(self):
        ids = {m.id for m in self.client.models.list()}
        self.assertLessEqual({"claude-sonnet", "gemini-flash", "resilient"}, ids)

    def test_models_retrieve(self):
        m = self.client.models.retrieve("claude-sonnet")
        self.assertEqual((m.id, m.object), ("claude-sonnet", "model"))
        m = self.client.models.retrieve("oai/gpt-4o-mini")  # provider/model, the id holds a slash
        self.assertEqual((m.id, m.owned_by), ("oai/gpt-4o-mini", "oai"))
        with self.assertRaises(openai.NotFoundError) as cm:
            self.client.models.retrieve("no-such-model")
        self.assertEqual((cm.exception.code, cm.exception.param), ("model_not_found", "model"))

    def test_only_the_documented_paths(self):
        for path in ("/v1/x/chat/completions", "/v1/chat/completions/extra", "/v1/batches"):
            with self.subTest(path=path):
                with self.assertRaises(openai.NotFoundError) as cm:
                    self.client.post(path, body={"model": "claude-sonnet", "messages": QUESTION}, cast_to=object)
                self.assertEqual(cm.exception.code, "route_not_found")
        self.assertEqual(MOCK.requests(), [], "nothing is sent to a provider")


class TestStreaming(GatewayTest):
    def test_stream_matches_non_stream_with_usage(self):
        for provider, p in PROVIDERS.items():
            with self.subTest(provider=provider):
                MOCK.reset()
                chunks = [c for _, c in self.stream(model=p["model"], messages=QUESTION,
                                                    stream_options={"include_usage": True})]
                self.assertTrue(all(c.object == "chat.completion.chunk" for c in chunks))
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                self.assertEqual(text, f"Hello from {provider} {p['upstream']}")
                finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
                self.assertEqual(finishes, ["stop"])
                last = chunks[-1]
                self.assertEqual(last.choices, [])
                self.assertEqual((last.usage.prompt_tokens, last.usage.completion_tokens), (11, 5))
                self.assertEqual(last.usage.prompt_tokens_details.cached_tokens, 4)
                self.assertTrue(all(c.usage is None for c in chunks[:-1]), "usage only in the last chunk")
                rec = self.received(provider)[-1]
                if provider == "anthropic":
                    self.assertIs(rec["body"].get("stream"), True)
                else:
                    self.assertEqual(rec["path"], "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
                self.assert_provider_auth(provider, rec)

    def test_stream_is_incremental(self):
        for provider, p in PROVIDERS.items():
            with self.subTest(provider=provider):
                timed = self.stream(model=p["prefix"] + "slow", messages=QUESTION)
                content_times = [t for t, c in timed if c.choices and c.choices[0].delta.content]
                self.assertGreaterEqual(len(content_times), 2)
                gap = timed[-1][0] - content_times[0]
                self.assertGreaterEqual(gap, 0.2, f"first content chunk only {gap:.3f}s before the end: buffered?")

    def test_cut_stream_is_an_error(self):
        for model in ("claude/claude-cut", "gem/gemini-cut", "oai/gpt-cut"):
            with self.subTest(model=model):
                got = []
                with self.assertRaises((openai.APIError, httpx.HTTPError),
                                       msg=f"stream of {model} ended silently after {got}"):
                    for c in self.client.chat.completions.create(model=model, messages=QUESTION, stream=True):
                        got.append(c.choices[0].delta.content if c.choices else None)


class TestTools(GatewayTest):
    def check_calls(self, calls):
        self.assertEqual([(c["name"], json.loads(c["arguments"])) for c in calls], EXPECTED_CALLS)
        ids = [c["id"] for c in calls]
        self.assertTrue(all(ids) and len(set(ids)) == 2, f"tool call ids must be set and distinct: {ids}")

    def answer_tools(self, provider, model, content, calls):
        """Send the tool results back; check the answer and what the provider got."""
        MOCK.reset()
        assistant = {"role": "assistant", "content": content, "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls]}
        messages = QUESTION + [assistant] + [
            {"role": "tool", "tool_call_id": c["id"], "content": TOOL_OUTPUTS[c["name"]]} for c in calls]
        r = self.client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
        self.assertEqual(r.choices[0].message.content, "Tool said: sunny, 21C | 10:00")
        body = self.received(provider)[-1]["body"]
        if provider == "gemini":
            parts = [p for c in body["contents"] for p in c["parts"]]
            calls_sent = [p["functionCall"]["name"] for p in parts if "functionCall" in p]
            responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
            self.assertEqual(calls_sent, ["get_weather", "get_time"])
            self.assertEqual([fr["name"] for fr in responses], ["get_weather", "get_time"])
            self.assertEqual(responses[0]["response"], {"content": "sunny, 21C"})
        else:
            blocks = [(m["role"], b) for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]]
            uses = {b["id"]: b["name"] for role, b in blocks if b["type"] == "tool_use" and role == "assistant"}
            results = [b["tool_use_id"] for role, b in blocks if b["type"] == "tool_result" and role == "user"]
            self.assertEqual(sorted(uses.values()), ["get_time", "get_weather"])
            self.assertEqual([uses.get(i) for i in results], ["get_weather", "get_time"])

    def check_tools_sent(self, provider):
        body = self.received(provider)[-1]["body"]
        if provider == "anthropic":
            self.assertEqual([t["name"] for t in body["tools"]], ["get_weather", "get_time"])
            self.assertEqual(body["tools"][0]["input_schema"]["properties"], {"city": {"type": "string"}})
        else:
            decls = [d for t in body["tools"] for d in t.get("functionDeclarations", [])]
            self.assertEqual([d["name"] for d in decls], ["get_weather", "get_time"])

    def test_tool_calls_non_streaming(self):
        for provider, p in PROVIDERS.items():
            with self.subTest(provider=provider):
                MOCK.reset()
                model = p["prefix"] + "tools"
                r = self.client.chat.completions.create(model=model, messages=QUESTION, tools=TOOLS)
                self.check_tools_sent(provider)
                msg = r.choices[0].message
                self.assertEqual(r.choices[0].finish_reason, "tool_calls")
                self.assertTrue(all(c.type == "function" for c in msg.tool_calls))
                calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                         for c in msg.tool_calls]
                self.check_calls(calls)
                self.answer_tools(provider, model, msg.content, calls)

    def test_tool_calls_streaming(self):
        for provider, p in PROVIDERS.items():
            with self.subTest(provider=provider):
                MOCK.reset()
                model = p["prefix"] + "tools"
                acc, finish, text = {}, None, ""
                for _, c in self.stream(model=model, messages=QUESTION, tools=TOOLS):
                    if not c.choices:
                        continue
                    finish = c.choices[0].finish_reason or finish
                    text += c.choices[0].delta.content or ""
                    for tc in c.choices[0].delta.tool_calls or []:
                        slot = acc.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                        slot["id"] = slot["id"] or tc.id
                        if tc.function and tc.function.name:
                            slot["name"] = tc.function.name
                        slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
                self.check_tools_sent(provider)
                self.assertEqual(sorted(acc), [0, 1], "tool call indexes are 0 and 1")
                self.assertEqual(finish, "tool_calls")
                calls = [acc[0], acc[1]]
                self.check_calls(calls)
                self.answer_tools(provider, model, text or None, calls)


class TestEmbeddings(GatewayTest):
    INPUTS = ["first text", "the second, longer text"]

    def test_embeddings(self):
        for provider, model in (("openai", "oai/text-embedding-3-small"), ("gemini", "gem/text-embedding-004")):
            with self.subTest(provider=provider):
                MOCK.reset()
                r = self.client.embeddings.create(model=model, input=self.INPUTS)
                self.assertEqual([d.index for d in r.data], [0, 1])
                for i, d in enumerate(r.data):  # the mock's vector is [i, len(text), 0.5, -0.25]
                    self.assertEqual(d.embedding, [float(i), float(len(self.INPUTS[i])), 0.5, -0.25])
                rec = self.received(provider)[-1]
                self.assert_provider_auth(provider, rec)
                if provider == "gemini":
                    self.assertEqual(rec["path"], "/v1beta/models/text-embedding-004:batchEmbedContents")
                    texts = [r["content"]["parts"][0]["text"] for r in rec["body"]["requests"]]
                    self.assertEqual(texts, self.INPUTS)
                else:
                    self.assertEqual((rec["path"], rec["body"]["input"]), ("/v1/embeddings", self.INPUTS))


class TestFallbackAndErrors(GatewayTest):
    def test_fallback_after_429(self):
        r = self.client.chat.completions.create(model="resilient", messages=QUESTION)
        self.assertEqual(r.choices[0].message.content, "Hello from anthropic claude-sonnet-4")
        paths = [(rec["path"], rec["body"].get("model")) for rec in MOCK.requests() if isinstance(rec["body"], dict)]
        self.assertIn(("/v1/chat/completions", "fail-429"), paths)
        self.assertEqual(paths[-1], ("/v1/messages", "claude-sonnet-4"))
        self.assertLess(paths.index(("/v1/chat/completions", "fail-429")), len(paths) - 1)

    def assert_openai_error(self, err, statuses):
        self.assertIn(err.status_code, statuses, f"status {err.status_code}: {err.body}")
        self.assertIsInstance(err.body, dict, f"error body is not OpenAI's {{'error': {{...}}}}: {err.body!r}")
        self.assertTrue(err.body.get("message"), f"no error.message: {err.body}")
        return err.body["message"]

    def test_unknown_model(self):
        with self.assertRaises((openai.NotFoundError, openai.BadRequestError)) as cm:
            self.client.chat.completions.create(model="no-such-model", messages=QUESTION)
        self.assertIn("no-such-model", self.assert_openai_error(cm.exception, (400, 404)))
        self.assertEqual(MOCK.requests(), [], "nothing is sent to a provider")

    def test_errors_have_openais_field_types(self):
        """`type` a category, `code` a string, `param` present (null when no field is at fault)."""
        with self.assertRaises(openai.NotFoundError) as cm:
            self.client.chat.completions.create(model="no-such-model", messages=QUESTION)
        e = cm.exception
        self.assertEqual((e.type, e.code, e.param), ("not_found_error", "model_not_found", "model"))
        self.assertTrue(e.body.get("request_id"), e.body)
        with self.assertRaises(openai.AuthenticationError) as cm:
            client(key="wrong").chat.completions.create(model="claude-sonnet", messages=QUESTION)
        e = cm.exception
        self.assertEqual((e.type, e.code), ("authentication_error", "unauthorized"))
        self.assertIn("param", e.body)
        self.assertIsNone(e.body["param"])

    def test_no_messages(self):
        with self.assertRaises(openai.BadRequestError) as cm:
            self.client.chat.completions.create(model="claude-sonnet", messages=[])
        self.assert_openai_error(cm.exception, (400,))

    def test_provider_garbage_is_502(self):
        for model in ("oai/garbage", "claude/claude-garbage", "gem/gemini-garbage"):
            with self.subTest(model=model):
                with self.assertRaises(openai.APIStatusError) as cm:
                    self.client.chat.completions.create(model=model, messages=QUESTION)
                self.assert_openai_error(cm.exception, (502,))

    def test_provider_errors(self):
        for model in ("claude/claude-fail-500", "gem/gemini-fail-500"):
            with self.subTest(model=model):
                with self.assertRaises(openai.InternalServerError) as cm:
                    self.client.chat.completions.create(model=model, messages=QUESTION)
                self.assert_openai_error(cm.exception, (500, 502))
        with self.assertRaises(openai.RateLimitError) as cm:  # one target only: nothing to fall back to
            self.client.chat.completions.create(model="claude-limited/claude-fail-429", messages=QUESTION)
        self.assert_openai_error(cm.exception, (429,))

    def test_a_refused_provider_key_is_502_every_time(self):
        """A provider refusing Portico's key is the operator's problem: 502 provider_auth_error every time,
        never a 429 to retry, and a metric names the key."""
        for attempt in range(3):
            with self.subTest(attempt=attempt):
                with self.assertRaises(openai.APIStatusError) as cm:
                    self.client.chat.completions.create(model="oai-badkey/gpt-4o", messages=QUESTION)
                self.assertEqual(cm.exception.status_code, 502, cm.exception.body)
                self.assertEqual(cm.exception.code, "provider_auth_error", cm.exception.body)
                self.assertIsNone(cm.exception.response.headers.get("retry-after"))
        with urllib.request.urlopen(f"http://127.0.0.1:{GATEWAY.admin_port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        self.assertIn('portico_ai_provider_auth_failures_total{key="oai-badkey.keys[0]",provider="oai-badkey"} 1',
                      metrics)

    def test_a_429_cools_the_key_for_that_model_only(self):
        """Providers limit per key and model: right after a 429 on one model, another model of the same
        provider and key is still served."""
        with self.assertRaises(openai.RateLimitError):
            self.client.chat.completions.create(model="oai-permodel/fail-429", messages=QUESTION)
        r = self.client.chat.completions.create(model="oai-permodel/gpt-4o", messages=QUESTION)
        self.assertEqual(r.choices[0].message.content, "Hello from openai gpt-4o")

    def test_a_429_always_says_when_to_retry(self):
        """A provider 429 without Retry-After still reaches the client with one: the key's cooldown."""
        with self.assertRaises(openai.RateLimitError) as cm:
            self.client.chat.completions.create(model="oai-bare/fail-429-bare", messages=QUESTION)
        retry_after = cm.exception.response.headers.get("retry-after")
        self.assertIsNotNone(retry_after, "no Retry-After on the 429")
        self.assertGreaterEqual(int(retry_after), 1)

    def test_provider_keys_never_reach_the_client_or_the_log(self):
        """A provider that echoes its key in an error: every configured key, and anything shaped like a key,
        is scrubbed from what the client gets and from Portico's log."""
        secrets = (harness.PROVIDER_KEY, harness.PROVIDER_KEY_2, "sk-live-abcdef123456",
                   "AIzaSyA1234567890abcdefghijklmnop")
        for model in ("leaky/leak-key",) * 4 + ("claude/claude-leak-key", "gem/gemini-leak-key"):
            with self.subTest(model=model):
                with self.assertRaises(openai.APIStatusError) as cm:
                    self.client.chat.completions.create(model=model, messages=QUESTION)
                text = json.dumps(cm.exception.body) + str(cm.exception)
                self.assertIn("Incorrect API key provided", text)
                for s in secrets:
                    self.assertNotIn(s, text)
        got = {r["headers"].get("authorization", "") for r in MOCK.requests("/v1/chat")}
        self.assertIn(f"Bearer {harness.PROVIDER_KEY_2}", got, "the second key was never echoed")
        log = GATEWAY.log(lines=1_000_000)
        for s in secrets:
            self.assertNotIn(s, log)

    def test_wrong_client_key(self):
        with self.assertRaises(openai.AuthenticationError) as cm:
            client(key="not-the-key").chat.completions.create(model="claude-sonnet", messages=QUESTION)
        self.assertEqual(cm.exception.status_code, 401)
        self.assertEqual(MOCK.requests(), [], "nothing is sent to a provider")


if __name__ == "__main__":
    unittest.main()
