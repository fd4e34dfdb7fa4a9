"""End-to-end tests of what Portico translates for Anthropic and Gemini (issue 17, items 9 and 12), with the
official ``openai`` SDK against the strict mock providers (``mock_providers.py``, ``mock_checks.py``): the
mock refuses what the real APIs refuse, so a translation that sends it fails here as it would in production.

- Turns: a conversation that opens with the assistant, runs of one role, tool results followed by a user
  message: the same request works on every provider.
- Parameters: ``reasoning_effort`` (Anthropic ``thinking``, Gemini ``thinkingConfig``; reasoning tokens in
  ``completion_tokens_details``), ``cache_control`` (kept for Anthropic, cached tokens reported), PDF file
  parts, and a 400 naming each parameter a provider has no equivalent for, which lets fallback try the
  next target.

Same setup and skip rule as ``test_sdk.py`` (one mock and one gateway for the module), plus the aliases in
``MODELS``.
"""

import base64
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import openai  # noqa: E402

MOCK = None
GATEWAY = None
#: Fallback from Anthropic (first) to OpenAI.
MODELS = "    claude-then-oai: {targets: [{provider: claude, model: claude-sonnet-4}, " \
         "{provider: oai, model: gpt-4o-mini}]}\n"
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
PDF = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4\n%mock\n").decode()
EPHEMERAL = {"type": "ephemeral"}


def setUpModule():
    global MOCK, GATEWAY
    MOCK, GATEWAY = harness.start_module(models=MODELS)


def tearDownModule():
    harness.stop_module(MOCK, GATEWAY)


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

    def refused(self, **kw):
        """The 400's message; the provider was not called."""
        with self.assertRaises(openai.BadRequestError) as cm:
            self.client.chat.completions.create(**kw)
        self.assertEqual(MOCK.requests(), [], "a refused request reached a provider")
        return cm.exception.body["message"]


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


class TestReasoning(TranslationTest):
    """Item 12: `reasoning_effort`."""

    def test_claude_thinks_within_its_budget_and_shows_only_the_answer(self):
        model, answer = EVERY["anthropic"]
        r = self.chat(model=model, messages=[{"role": "user", "content": "Hi"}], reasoning_effort="low")
        self.assertEqual(r.choices[0].message.content, answer)
        body = self.last_body("anthropic")
        self.assertEqual(body["thinking"], {"type": "enabled", "budget_tokens": 2048})
        self.assertGreater(body["max_tokens"], 2048)
        chunks = list(self.client.chat.completions.create(
            model="claude/claude-tools", messages=[{"role": "user", "content": "Hi"}], reasoning_effort="high",
            stream=True, tools=[{"type": "function", "function": {"name": "get_weather"}}]))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertEqual(text, "Let me check.", "no thinking text in the answer")
        names = [t.function.name for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []
                 if t.function and t.function.name]
        self.assertEqual(names, ["get_weather", "get_time"])

    def test_claude_refuses_what_thinking_forbids_by_name(self):
        msg = self.refused(model=EVERY["anthropic"][0], messages=[{"role": "user", "content": "Hi"}],
                           reasoning_effort="medium", temperature=0.2)
        self.assertIn("`temperature`", msg)

    def test_gemini_thinks_and_reports_reasoning_tokens(self):
        model, answer = EVERY["gemini"]
        r = self.chat(model=model, messages=[{"role": "user", "content": "Hi"}], reasoning_effort="medium")
        self.assertEqual(r.choices[0].message.content, answer)
        self.assertEqual(r.usage.completion_tokens_details.reasoning_tokens, 3)
        self.assertEqual((r.usage.completion_tokens, r.usage.total_tokens), (8, 19), "reasoning is completion")
        thinking = self.last_body("gemini")["generationConfig"]["thinkingConfig"]
        self.assertEqual(thinking, {"thinkingBudget": 8192, "includeThoughts": False})
        last = list(self.client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}],
                                                        reasoning_effort="low", stream=True,
                                                        stream_options={"include_usage": True}))[-1]
        self.assertEqual(last.usage.completion_tokens_details.reasoning_tokens, 3)


class TestParameters(TranslationTest):
    """Item 12: prompt caching, files, and parameters without an equivalent."""

    def test_cache_control_reaches_claude_and_cached_tokens_are_counted(self):
        messages = [
            {"role": "system", "content": [{"type": "text", "text": "A long manual.", "cache_control": EPHEMERAL}]},
            {"role": "user", "content": [{"type": "text", "text": "Question?", "cache_control": EPHEMERAL}]},
        ]
        r = self.chat(model=EVERY["anthropic"][0], messages=messages)
        body = self.last_body("anthropic")
        self.assertEqual(body["system"], [{"type": "text", "text": "A long manual.", "cache_control": EPHEMERAL}])
        self.assertEqual(body["messages"][0]["content"][0]["cache_control"], EPHEMERAL)
        # input 7 + cache read 4 + cache write 2
        self.assertEqual(r.usage.prompt_tokens, 13)
        self.assertEqual(r.usage.prompt_tokens_details.cached_tokens, 4)
        r = self.chat(model=EVERY["gemini"][0], messages=messages)  # a price hint Gemini has no place for
        self.assertEqual(r.choices[0].message.content, EVERY["gemini"][1])
        self.assertNotIn("cache_control", str(self.last_body("gemini")))

    def test_pdf_parts_reach_claude_and_gemini(self):
        messages = [{"role": "user", "content": [
            {"type": "text", "text": "Summarise this."},
            {"type": "file", "file": {"file_data": PDF, "filename": "report.pdf"}}]}]
        data = PDF.split(",", 1)[1]
        for provider in ("anthropic", "gemini"):
            with self.subTest(provider=provider):
                r = self.chat(model=EVERY[provider][0], messages=messages)
                self.assertEqual(r.choices[0].message.content, EVERY[provider][1])
                body = self.last_body(provider)
                if provider == "anthropic":
                    self.assertEqual(body["messages"][0]["content"][1], {
                        "type": "document", "title": "report.pdf",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": data}})
                else:
                    self.assertEqual(body["contents"][0]["parts"][1],
                                     {"inlineData": {"mimeType": "application/pdf", "data": data}})
                MOCK.reset()
                msg = self.refused(model=EVERY[provider][0], messages=[{"role": "user", "content": [
                    {"type": "file", "file": {"file_id": "file-abc123"}}]}])
                self.assertIn("`file_id`", msg)

    def test_parameters_without_an_equivalent_are_refused_by_name(self):
        hi = [{"role": "user", "content": "Hi"}]
        cases = {
            "logprobs": {"logprobs": True},
            "top_logprobs": {"top_logprobs": 2},
            "logit_bias": {"logit_bias": {"50256": -100}},
            "modalities": {"modalities": ["text", "audio"]},
            "audio": {"audio": {"voice": "alloy", "format": "wav"}},
            "prediction": {"prediction": {"type": "content", "content": "Hi"}},
            "web_search_options": {"web_search_options": {}},
        }
        for provider in ("anthropic", "gemini"):
            for name, params in cases.items():
                with self.subTest(provider=provider, parameter=name):
                    MOCK.reset()
                    msg = self.refused(model=EVERY[provider][0], messages=hi, **params)
                    self.assertIn(f"`{name}`", msg)
        for name, params in {"frequency_penalty": {"frequency_penalty": 0.5}, "n": {"n": 2}}.items():
            with self.subTest(provider="anthropic", parameter=name):
                MOCK.reset()
                self.assertIn(f"`{name}`", self.refused(model=EVERY["anthropic"][0], messages=hi, **params))

    def test_a_target_that_cannot_express_the_request_falls_back(self):
        r = self.chat(model="claude-then-oai", messages=[{"role": "user", "content": "Hi"}], logprobs=True)
        self.assertEqual(r.choices[0].message.content, "Hello from openai gpt-4o-mini")
        self.assertEqual([rec["path"] for rec in MOCK.requests()], ["/v1/chat/completions"])
        self.assertIs(self.last_body("openai")["logprobs"], True)

    def test_harmless_parameters_are_dropped_for_claude_and_gemini(self):
        extra = {"seed": 7, "store": True, "metadata": {"team": "a"}, "service_tier": "auto", "user": "u-1",
                 "parallel_tool_calls": True, "logprobs": False, "frequency_penalty": 0}
        for provider in ("anthropic", "gemini"):
            with self.subTest(provider=provider):
                r = self.chat(model=EVERY[provider][0], messages=[{"role": "user", "content": "Hi"}], **extra)
                self.assertEqual(r.choices[0].message.content, EVERY[provider][1])
        self.assertEqual(self.last_body("anthropic")["metadata"], {"user_id": "u-1"})


if __name__ == "__main__":
    unittest.main()
