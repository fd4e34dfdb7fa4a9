"""Anthropic's Messages API inbound, with the official ``anthropic`` Python SDK.

The SDK (as Claude Code would, with ``ANTHROPIC_BASE_URL`` pointed at Portico) calls ``/v1/messages`` and
``/v1/messages/count_tokens``. To the Anthropic provider the request goes natively (the mock checks it as the
real API does); to OpenAI-format and Gemini providers it is translated through Chat Completions, and the
answer comes back in Anthropic's shape, streamed or whole, with tools, and with Anthropic-shaped errors.
"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import anthropic  # noqa: E402

MOCK = None
GATEWAY = None
HELLO = [{"role": "user", "content": "Say hello"}]
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TIME = {"name": "get_time", "description": "Time in a zone",
        "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}
#: (model the client names, what answers) per provider format.
TARGETS = [("claude-sonnet", "Hello from anthropic claude-sonnet-4"),
           ("oai/gpt-4o", "Hello from openai gpt-4o"),
           ("gem/gemini-2.0-flash", "Hello from gemini gemini-2.0-flash")]
TOOL_MODELS = ["claude/claude-tools", "oai/tools", "gem/gemini-tools"]


def setUpModule():
    global MOCK, GATEWAY
    MOCK, GATEWAY = harness.start_module()


def tearDownModule():
    harness.stop_module(MOCK, GATEWAY)


def client(**kw):
    kw.setdefault("api_key", harness.CLIENT_KEY)
    return anthropic.Anthropic(base_url=GATEWAY.url, max_retries=0, timeout=20, **kw)


class MessagesTest(unittest.TestCase):
    def setUp(self):
        MOCK.reset()
        self.client = client()

    def last(self, prefix):
        recs = MOCK.requests(prefix)
        self.assertTrue(recs, f"the mock got no {prefix} request; portico log:\n{GATEWAY.log()}")
        return recs[-1]


class TestMessages(MessagesTest):
    def test_every_provider_answers_in_anthropics_shape(self):
        for model, text in TARGETS:
            with self.subTest(model=model):
                m = self.client.messages.create(model=model, max_tokens=100, system="You are terse.",
                                                messages=HELLO)
                self.assertEqual((m.type, m.role, m.stop_reason), ("message", "assistant", "end_turn"))
                self.assertEqual([b.type for b in m.content], ["text"])
                self.assertEqual(m.content[0].text, text)
                self.assertEqual(m.usage.output_tokens, 5)
                # 11 prompt tokens, 4 of them read from the cache.
                self.assertEqual((m.usage.input_tokens, m.usage.cache_read_input_tokens), (7, 4))

    def test_the_anthropic_provider_gets_the_request_as_sent(self):
        """Natively: the body goes through with the model replaced, cache_control and all."""
        system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
        self.client.messages.create(model="claude-sonnet", max_tokens=100, system=system, messages=HELLO,
                                    metadata={"user_id": "u-1"})
        rec = self.last("/v1/messages")
        self.assertEqual(rec["body"]["model"], "claude-sonnet-4")
        self.assertEqual(rec["body"]["system"], system)
        self.assertEqual(rec["body"]["metadata"], {"user_id": "u-1"})
        self.assertEqual(rec["headers"].get("x-api-key"), harness.PROVIDER_KEY)
        for value in rec["headers"].values():
            self.assertNotIn(harness.CLIENT_KEY, value)

    def test_other_providers_get_a_translated_request(self):
        self.client.messages.create(model="oai/gpt-4o", max_tokens=64, system="You are terse.", messages=HELLO,
                                    stop_sequences=["END"], extra_body={"temperature": 0.2})
        body = self.last("/v1/chat/completions")["body"]
        self.assertEqual(body["messages"], [{"role": "system", "content": "You are terse."},
                                            {"role": "user", "content": "Say hello"}])
        self.assertEqual((body["max_tokens"], body["stop"], body["temperature"]), (64, ["END"], 0.2))

    def test_streams_from_every_provider(self):
        for model, text in TARGETS:
            with self.subTest(model=model):
                with self.client.messages.stream(model=model, max_tokens=100, messages=HELLO) as s:
                    got = "".join(s.text_stream)
                    final = s.get_final_message()
                self.assertEqual(got, text)
                self.assertEqual(final.stop_reason, "end_turn")
                self.assertEqual(final.usage.output_tokens, 5)

    def test_tools_and_a_tool_result_round_trip_on_every_provider(self):
        for model in TOOL_MODELS:
            with self.subTest(model=model):
                m = self.client.messages.create(model=model, max_tokens=200, tools=[WEATHER, TIME], messages=HELLO)
                uses = [b for b in m.content if b.type == "tool_use"]
                self.assertEqual(m.stop_reason, "tool_use")
                self.assertEqual([(u.name, u.input) for u in uses],
                                 [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})])
                results = [{"type": "tool_result", "tool_use_id": u.id, "content": out}
                           for u, out in zip(uses, ["sunny", "10:00"])]
                m2 = self.client.messages.create(
                    model=model, max_tokens=200, tools=[WEATHER, TIME],
                    messages=HELLO + [{"role": "assistant", "content": m.content},
                                      {"role": "user", "content": results}])
                self.assertEqual(m2.content[0].text, "Tool said: sunny | 10:00")

    def test_streamed_tool_calls(self):
        for model in TOOL_MODELS:
            with self.subTest(model=model):
                with self.client.messages.stream(model=model, max_tokens=200, tools=[WEATHER, TIME],
                                                 messages=HELLO) as s:
                    final = s.get_final_message()
                uses = [(b.name, b.input) for b in final.content if b.type == "tool_use"]
                self.assertEqual(uses, [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})])
                self.assertEqual(final.stop_reason, "tool_use")

    def test_images_reach_a_translated_provider(self):
        png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
        content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                   {"type": "text", "text": "What is this?"}]
        self.client.messages.create(model="gem/gemini-2.0-flash", max_tokens=50,
                                    messages=[{"role": "user", "content": content}])
        parts = self.last("/v1beta/")["body"]["contents"][0]["parts"]
        self.assertEqual(parts[0], {"inlineData": {"mimeType": "image/png", "data": png}})

    def test_a_bearer_token_is_accepted_too(self):
        c = anthropic.Anthropic(base_url=GATEWAY.url, auth_token=harness.CLIENT_KEY, max_retries=0, timeout=20)
        m = c.messages.create(model="claude-sonnet", max_tokens=10, messages=HELLO)
        self.assertEqual(m.content[0].text, "Hello from anthropic claude-sonnet-4")

    def test_count_tokens(self):
        """Anthropic's own count for Anthropic models; an estimate with a tokenizer for the others."""
        n = self.client.messages.count_tokens(model="claude-sonnet", messages=HELLO)
        self.assertEqual(n.input_tokens, 1001)  # the mock's count: 1000 + one message
        self.assertNotIn("max_tokens", self.last("/v1/messages/count_tokens")["body"])
        long = [{"role": "user", "content": " ".join(["word"] * 500)}]
        n = self.client.messages.count_tokens(model="oai/gpt-4o", messages=long)
        self.assertTrue(400 < n.input_tokens < 700, n.input_tokens)


class TestErrors(MessagesTest):
    def test_errors_are_anthropics_shape(self):
        with self.assertRaises(anthropic.NotFoundError) as cm:
            self.client.messages.create(model="no-such-model", max_tokens=10, messages=HELLO)
        body = cm.exception.body
        self.assertEqual(body["type"], "error")
        self.assertEqual(body["error"]["type"], "not_found_error")
        self.assertIn("no-such-model", body["error"]["message"])
        self.assertTrue(body["request_id"])
        with self.assertRaises(anthropic.AuthenticationError) as cm:
            client(api_key="wrong").messages.create(model="claude-sonnet", max_tokens=10, messages=HELLO)
        self.assertEqual(cm.exception.body["error"]["type"], "authentication_error")
        with self.assertRaises(anthropic.BadRequestError) as cm:
            self.client.messages.create(model="claude-sonnet", max_tokens=10, messages=[])
        self.assertEqual(cm.exception.body["error"]["type"], "invalid_request_error")

    def test_server_tools_are_refused_for_other_providers_by_name(self):
        search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
        with self.assertRaises(anthropic.BadRequestError) as cm:
            self.client.messages.create(model="oai/gpt-4o", max_tokens=10, messages=HELLO, tools=[search])
        self.assertIn("web_search_20250305", cm.exception.body["error"]["message"])
        self.assertEqual(MOCK.requests(), [])

    def test_a_cut_stream_ends_with_an_error_event(self):
        with self.assertRaises(anthropic.APIStatusError) as cm:
            with self.client.messages.stream(model="oai/cut", max_tokens=10, messages=HELLO) as s:
                for _ in s:
                    pass
        self.assertIn("provider", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
