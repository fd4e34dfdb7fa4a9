"""End-to-end tests of what Portico translates for Anthropic and Gemini (issue 17), with the official
``openai`` SDK against the strict mock providers (``mock_providers.py``, ``mock_checks.py``): the mock refuses
what the real APIs refuse, so a translation that sends it fails here as it would in production.

- Turns: a conversation that opens with the assistant, runs of one role, tool results followed by a user
  message: the same request works on every provider.

Same setup and skip rule as ``test_sdk.py`` (one mock and one gateway for the module).
"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import openai  # noqa: E402

MOCK = None
GATEWAY = None
#: A model per provider, as the client names it, and what the mock answers.
EVERY = {"openai": ("oai/gpt-4o-mini", "Hello from openai gpt-4o-mini"),
         "anthropic": ("claude/claude-sonnet-4", "Hello from anthropic claude-sonnet-4"),
         "gemini": ("gem/gemini-2.5-flash", "Hello from gemini gemini-2.5-flash")}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "gemini": "/v1beta/"}
OPENS_WITH_ASSISTANT = [
    {"role": "system", "content": "You are a helpful desk."},
    {"role": "assistant", "content": "Hi! How can I help you today?"},
    {"role": "assistant", "content": "I can look up the weather."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "user", "content": "And please be brief."},
]


def setUpModule():
    global MOCK, GATEWAY
    binary = harness.gateway_bin()
    if not binary.exists():
        raise RuntimeError(f"portico binary not found at {binary}: build it (cargo build) or set PORTICO_BIN")
    ok, reason = harness.ai_support(binary)
    if not ok:
        raise unittest.SkipTest(reason)
    MOCK = harness.MockProviders().start()
    try:
        GATEWAY = harness.Gateway(MOCK.port, binary).start()
    except BaseException:
        MOCK.stop()
        raise


def tearDownModule():
    if GATEWAY:
        GATEWAY.stop()
    if MOCK:
        MOCK.stop()


class TranslationTest(unittest.TestCase):
    def setUp(self):
        MOCK.reset()
        self.client = openai.OpenAI(base_url=GATEWAY.url + "/v1", api_key=harness.CLIENT_KEY, max_retries=0,
                                    timeout=20)

    def chat(self, **kw):
        try:
            return self.client.chat.completions.create(**kw)
        except openai.APIStatusError as e:
            self.fail(f"{kw.get('model')}: HTTP {e.status_code}: {e.body}\nportico log:\n{GATEWAY.log()}")

    def last_body(self, provider):
        recs = [r for r in MOCK.requests(PATHS[provider])
                if provider != "openai" or r["path"] == PATHS["openai"]]
        self.assertTrue(recs, f"the mock got no {provider} request")
        return recs[-1]["body"]



class TestTurns(TranslationTest):
    """Item 9: the conversation's turns as each provider accepts them."""

    def test_a_conversation_opening_with_the_assistant_works_on_every_provider(self):
        for provider, (model, answer) in EVERY.items():
            for stream in (False, True):
                with self.subTest(provider=provider, stream=stream):
                    MOCK.reset()
                    if stream:
                        chunks = list(self.client.chat.completions.create(
                            model=model, messages=OPENS_WITH_ASSISTANT, stream=True))
                        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                    else:
                        text = self.chat(model=model, messages=OPENS_WITH_ASSISTANT).choices[0].message.content
                    self.assertEqual(text, answer)
                    body = self.last_body(provider)
                    if provider == "anthropic":
                        turns = [(m["role"], [b["text"] for b in m["content"]]) for m in body["messages"]]
                        self.assertEqual(turns, [
                            ("user", ["(conversation continues)"]),
                            ("assistant", ["Hi! How can I help you today?", "I can look up the weather."]),
                            ("user", ["Weather in Paris?", "And please be brief."])])
                    elif provider == "gemini":
                        turns = [(c["role"], [p["text"] for p in c["parts"]]) for c in body["contents"]]
                        self.assertEqual([r for r, _ in turns], ["user", "model", "user"])
                        self.assertEqual(turns[0][1], ["(conversation continues)"])
                    else:
                        self.assertEqual(body["messages"], OPENS_WITH_ASSISTANT, "OpenAI takes it as it is")

    def test_tool_results_and_a_user_message_make_one_turn(self):
        for provider in ("anthropic", "gemini"):
            with self.subTest(provider=provider):
                MOCK.reset()
                model = {"anthropic": "claude/claude-tools", "gemini": "gem/gemini-tools"}[provider]
                tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
                         for n in ("get_weather", "get_time")]
                first = self.chat(model=model, messages=OPENS_WITH_ASSISTANT, tools=tools).choices[0].message
                self.assertEqual(len(first.tool_calls), 2)
                history = OPENS_WITH_ASSISTANT + [first.model_dump(exclude_none=True)] + [
                    {"role": "tool", "tool_call_id": c.id, "content": f"result {i}"}
                    for i, c in enumerate(first.tool_calls)] + [{"role": "user", "content": "Thanks; and now?"}]
                r = self.chat(model=model, messages=history, tools=tools)
                self.assertEqual(r.choices[0].message.content, "Tool said: result 0 | result 1")
                body = self.last_body(provider)
                roles = [m["role"] for m in body.get("messages") or body.get("contents")]
                self.assertEqual(roles[-1], "user")
                self.assertEqual(len(roles), 5, roles)


if __name__ == "__main__":
    unittest.main()
