"""OpenAI's Responses API (``POST /v1/responses``, issue 18 item 1) through Portico, with the official ``openai``
SDK (``client.responses.create``, ``client.responses.stream``, ``stream=True``) on every provider format:

- native to OpenAI (``oai/...``) and Azure OpenAI (``az/...``, the v1 surface ``/openai/v1/responses``);
- translated through Chat Completions to Anthropic (``claude/...``), Gemini (``gem/...``) and a vendor that
  speaks Chat Completions only (``compat/...``, kind ``openai_compatible``).

Covered: text, instructions, typed stream events with sequence numbers, a function-call round trip through
``function_call_output``, ``text.format`` json_schema, fallback from a failing first target, usage and cost
in the access log, a provider failing mid-stream (``response.failed``), and what cannot be translated
(``previous_response_id``, hosted tools): a 400 naming it for a translated target, passed natively to OpenAI,
and skipped for the next target of an alias. Mock: ``mock_responses.py`` (as strict as the real API).

Same setup and skip rule as ``test_sdk.py``; every wait is a poll with a deadline.
"""

import json
import sys
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import openai  # noqa: E402

MOCK = None
GATEWAY = None
MODELS = ("    claude-then-oai: {targets: [{provider: claude, model: claude-sonnet-4}, "
          "{provider: oai, model: gpt-4o}]}\n")
#: provider format -> (model prefix, mock path prefix, the provider's name in the mock's answer)
EVERY = {"openai": ("oai/", "/v1/responses", "openai"),
         "azure": ("az/", "/openai/v1/responses", "openai"),
         "anthropic": ("claude/", "/v1/messages", "anthropic"),
         "gemini": ("gem/", "/v1beta/", "gemini"),
         "compat": ("compat/", "/v1/chat/completions", "openai")}
NATIVE = {"openai", "azure"}
WEATHER_TOOLS = [
    {"type": "function", "name": "get_weather", "description": "Weather in a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"type": "function", "name": "get_time", "description": "Time in a zone",
     "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}},
]
SENTIMENT = {"type": "json_schema", "name": "sentiment", "strict": True,
             "schema": {"type": "object", "additionalProperties": False, "required": ["label", "score"],
                        "properties": {"label": {"type": "string"}, "score": {"type": "number"}}}}


def setUpModule():
    global MOCK, GATEWAY
    MOCK, GATEWAY = harness.start_module(models=MODELS)


def tearDownModule():
    harness.stop_module(MOCK, GATEWAY)


def client():
    return openai.OpenAI(base_url=GATEWAY.url + "/v1", api_key=harness.CLIENT_KEY, max_retries=0, timeout=20)


def access_record(request_id, timeout=40.0):
    return harness.access_record(GATEWAY, request_id, timeout)


def model_of(fmt, script=""):
    """The model a provider format is called with; ``script`` (tools, json, cut...) picks the mock's behaviour."""
    prefix = EVERY[fmt][0]
    names = {"anthropic": "claude-sonnet-4", "gemini": "gemini-2.0-flash", "azure": "gpt-4o-deploy",
             "compat": "llama-3"}
    name = names.get(fmt, "gpt-4o")
    return prefix + (f"{name}-{script}" if script else name)


def only_request(test, fmt):
    """The one request the mock got, on the path of ``fmt``."""
    recs = MOCK.requests(EVERY[fmt][1])
    test.assertEqual(len(recs), 1, f"{fmt}: {[r['path'] for r in MOCK.requests()]}")
    return recs[0]


class ResponsesTest(unittest.TestCase):
    def setUp(self):
        MOCK.reset()


class TestEveryProvider(ResponsesTest):
    def test_create_with_instructions(self):
        for fmt in EVERY:
            with self.subTest(fmt=fmt):
                MOCK.reset()
                model = model_of(fmt)
                r = client().responses.create(model=model, input="Say hello", instructions="Be brief.")
                self.assertEqual(r.output_text, f"Hello from {EVERY[fmt][2]} {model.split('/', 1)[1]}")
                self.assertEqual((r.object, r.status), ("response", "completed"))
                self.assertTrue(r.id.startswith("resp_"), r.id)
                u = r.usage
                self.assertEqual((u.input_tokens, u.output_tokens, u.total_tokens), (11, 5, 16))
                self.assertEqual(u.input_tokens_details.cached_tokens, 4)
                body = only_request(self, fmt)["body"]
                sent = {"openai": lambda: body["instructions"],
                        "azure": lambda: body["instructions"],
                        "anthropic": lambda: body["system"],
                        "gemini": lambda: body["systemInstruction"]["parts"][0]["text"],
                        "compat": lambda: body["messages"][0]["content"]}[fmt]()
                self.assertEqual(sent, "Be brief.")
                if fmt in NATIVE:
                    self.assertEqual(body["input"], "Say hello")  # the client's body, unchanged

    def test_azure_gets_the_deployment_in_the_body(self):
        client().responses.create(model="az/gpt-4o-deploy", input="Say hello")
        rec = only_request(self, "azure")
        self.assertEqual(rec["path"], "/openai/v1/responses")
        self.assertEqual(rec["body"]["model"], "gpt-4o-deploy")
        self.assertEqual(rec["headers"].get("api-key"), harness.PROVIDER_KEY)
        self.assertNotIn("authorization", rec["headers"])

    def test_stream_helper_events_and_final_response(self):
        for fmt in EVERY:
            with self.subTest(fmt=fmt):
                model = model_of(fmt)
                with client().responses.stream(model=model, input="Say hello") as stream:
                    events = list(stream)
                    final = stream.get_final_response()
                kinds = [e.type for e in events]
                self.assertEqual(kinds[:2], ["response.created", "response.in_progress"], kinds)
                self.assertEqual(kinds[-1], "response.completed", kinds)
                for k in ("response.output_item.added", "response.content_part.added", "response.output_text.done",
                          "response.content_part.done", "response.output_item.done"):
                    self.assertIn(k, kinds)
                self.assertEqual([e.sequence_number for e in events], list(range(len(events))))
                deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
                self.assertEqual(deltas, f"Hello from {EVERY[fmt][2]} {model.split('/', 1)[1]}")
                self.assertEqual(final.output_text, deltas)
                self.assertEqual((final.usage.input_tokens, final.usage.output_tokens), (11, 5))

    def test_raw_stream_of_tool_calls(self):
        for fmt in EVERY:
            with self.subTest(fmt=fmt):
                events = list(client().responses.create(model=model_of(fmt, "tools"), input="Weather in Paris?",
                                                        tools=WEATHER_TOOLS, stream=True))
                done = events[-1]
                self.assertEqual(done.type, "response.completed")
                calls = [o for o in done.response.output if o.type == "function_call"]
                self.assertEqual([(c.name, json.loads(c.arguments)) for c in calls],
                                 [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})])
                args = [e.arguments for e in events if e.type == "response.function_call_arguments.done"]
                self.assertEqual(args, [c.arguments for c in calls])
                pieces = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
                self.assertEqual(pieces, "".join(args))

    def test_function_call_round_trip(self):
        for fmt in EVERY:
            with self.subTest(fmt=fmt):
                MOCK.reset()
                c = client()
                model = model_of(fmt, "tools")
                history = [{"role": "user", "content": "Weather and time in Paris?"}]
                first = c.responses.create(model=model, input=history, tools=WEATHER_TOOLS)
                calls = [o for o in first.output if o.type == "function_call"]
                self.assertEqual([o.name for o in calls], ["get_weather", "get_time"])
                self.assertTrue(all(o.call_id and o.status == "completed" for o in calls), calls)
                results = {"get_weather": "sunny", "get_time": "noon"}
                history += first.output
                history += [{"type": "function_call_output", "call_id": o.call_id, "output": results[o.name]}
                            for o in calls]
                second = c.responses.create(model=model, input=history, tools=WEATHER_TOOLS)
                self.assertEqual(second.output_text, "Tool said: sunny | noon")

    def test_json_schema_format(self):
        for fmt in EVERY:
            with self.subTest(fmt=fmt):
                MOCK.reset()
                r = client().responses.create(model=model_of(fmt, "json"), input="Rate: great!",
                                              text={"format": SENTIMENT})
                self.assertEqual(json.loads(r.output_text), {"label": "positive", "score": 0.9})
                self.assertEqual(r.text.format.type, "json_schema")
                body = only_request(self, fmt)["body"]
                if fmt in NATIVE:
                    self.assertEqual(body["text"]["format"]["name"], "sentiment")
                elif fmt == "anthropic":
                    self.assertIn("JSON Schema", body["system"])
                elif fmt == "gemini":
                    self.assertEqual(body["generationConfig"]["responseMimeType"], "application/json")
                else:
                    self.assertEqual(body["response_format"]["json_schema"]["name"], "sentiment")


class TestFallbackAndCharging(ResponsesTest):
    def test_a_failing_first_target_falls_back(self):
        raw = client().responses.with_raw_response.create(model="fallback-500", input="Say hello")
        self.assertEqual((raw.headers["x-portico-provider"], raw.headers["x-portico-attempts"]), ("claude", "2"))
        self.assertEqual(raw.parse().output_text, "Hello from anthropic claude-sonnet-4")
        self.assertEqual(len(MOCK.requests("/v1/responses")), 1)  # the native attempt that failed

    def test_usage_and_cost_are_logged(self):
        for model, stream in (("oai/long", False), ("claude/long", False), ("gem/gemini-long", True),
                              ("compat/long", True)):
            with self.subTest(model=model, stream=stream):
                raw = client().responses.with_raw_response.create(model=model, input="Count", stream=stream)
                rid = raw.headers["x-request-id"]
                if stream:
                    events = list(raw.parse())
                    self.assertEqual(events[-1].type, "response.completed")
                    self.assertEqual(events[-1].response.usage.output_tokens, 5)
                else:
                    self.assertEqual(raw.parse().usage.output_tokens, 5)
                ai = access_record(rid)["ai"]
                self.assertEqual((ai["model"], ai["provider"]), (model, model.split("/")[0]))
                self.assertEqual((ai["prompt_tokens"], ai["completion_tokens"], ai["cached_tokens"]), (11, 5, 4), ai)
                self.assertFalse(ai["usage_estimated"], ai)
                self.assertAlmostEqual(ai["cost_usd"], (11 * 1.0 + 5 * 2.0) / 1e6, places=12)

    def test_a_translated_stream_cut_by_the_provider_ends_failed(self):
        events = list(client().responses.create(model="claude/claude-cut", input="Say hello", stream=True))
        self.assertEqual(events[-1].type, "response.failed")
        self.assertEqual(events[-1].response.status, "failed")
        self.assertIn("claude", events[-1].response.error.message)
        self.assertIn("response.output_text.delta", [e.type for e in events])
        self.assertEqual([e.sequence_number for e in events], list(range(len(events))))


class TestWhatCannotBeTranslated(ResponsesTest):
    def test_previous_response_id_is_refused_for_anthropic(self):
        with self.assertRaises(openai.BadRequestError) as cm:
            client().responses.create(model="claude/claude-sonnet-4", input="And then?",
                                      previous_response_id="resp_abc")
        self.assertIn("previous_response_id", cm.exception.message)
        self.assertEqual(cm.exception.status_code, 400)
        self.assertEqual(MOCK.requests("/v1/messages"), [])

    def test_previous_response_id_passes_natively(self):
        r = client().responses.create(model="oai/gpt-4o", input="And then?", previous_response_id="resp_abc")
        self.assertEqual(r.output_text, "Hello from openai gpt-4o")
        self.assertEqual(only_request(self, "openai")["body"]["previous_response_id"], "resp_abc")

    def test_an_alias_skips_a_target_that_cannot_take_it(self):
        raw = client().responses.with_raw_response.create(model="claude-then-oai", input="And then?",
                                                          previous_response_id="resp_abc")
        self.assertEqual(raw.headers["x-portico-provider"], "oai")
        self.assertEqual(raw.parse().output_text, "Hello from openai gpt-4o")

    def test_hosted_tools_are_named_for_translation_and_pass_natively(self):
        with self.assertRaises(openai.BadRequestError) as cm:
            client().responses.create(model="gem/gemini-2.0-flash", input="News?", tools=[{"type": "web_search"}])
        self.assertIn("`web_search`", cm.exception.message)
        r = client().responses.create(model="oai/gpt-4o", input="News?", tools=[{"type": "web_search"}])
        self.assertEqual(r.output_text, "Hello from openai gpt-4o")

    def test_errors_keep_openais_shape(self):
        with self.assertRaises(openai.BadRequestError) as cm:
            client().responses.create(model="compat/llama-3", input=[])
        self.assertIn("`input` is required", cm.exception.message)
        self.assertEqual(cm.exception.body["type"], "invalid_request_error")
        # OpenAI's own refusal comes back as it is.
        with self.assertRaises(openai.BadRequestError) as cm:
            client().responses.create(model="oai/gpt-4o", input="x", max_output_tokens=5)
        self.assertIn("max_output_tokens", cm.exception.message)


class TestTheMockIsStrict(ResponsesTest):
    """The mock refuses what OpenAI refuses, so a request Portico sends wrongly fails here too."""

    def post(self, body):
        req = urllib.request.Request(MOCK.url + "/v1/responses", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {harness.PROVIDER_KEY}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def test_refusals(self):
        ok = {"model": "gpt-4o", "input": "hi"}
        self.assertEqual(self.post(ok)[0], 200)
        for bad, said in (
                ({"model": "gpt-4o"}, "'input'"),
                (dict(ok, messages=[]), "Unknown parameter: 'messages'"),
                (dict(ok, tools=[{"type": "function", "function": {"name": "f"}}]), "tools[0].name"),
                (dict(ok, input=[{"type": "function_call_output", "call_id": "c9", "output": "x"}]), "c9"),
                (dict(ok, input=[{"role": "tool", "content": "x"}]), "'tool'"),
                (dict(ok, input=[{"role": "user", "content": [{"type": "text", "text": "x"}]}]), "'text'"),
                (dict(ok, previous_response_id="abc"), "previous_response_id")):
            with self.subTest(said=said):
                status, body = self.post(bad)
                self.assertEqual(status, 400, body)
                self.assertIn(said, body["error"]["message"])


if __name__ == "__main__":
    unittest.main()
