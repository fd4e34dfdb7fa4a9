"""What Portico charges, and what it refuses to serve uncharged, seen through the official ``openai`` SDK.

- Streams a client abandons are charged: the provider's own usage when Portico can still read it after the
  client left (``ai.drain_after_disconnect``), an estimate marked ``usage_estimated`` when the provider
  reports none.
- A budget on a model counts the model actually called, whatever name the client used.
- Models are priced by exact id (and dated versions of it); an unpriced model is counted, and refused
  where a USD budget applies.
- A model or deployment name that would change a provider's URL is refused.

The gateway and mock are this module's own (``harness.py``); consumers ``frank`` and ``grace`` carry the
budgets. Every wait is a poll with a deadline.
"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import openai  # noqa: E402

MOCK = None
GATEWAY = None
QUESTION = [{"role": "user", "content": "Say hello"}]
#: A 5,000-word prompt, as in the report of free aborted streams.
LONG_PROMPT = [{"role": "user", "content": " ".join(f"w{i % 100}" for i in range(5000))}]


def setUpModule():
    global MOCK, GATEWAY
    MOCK, GATEWAY = harness.start_module()


def tearDownModule():
    harness.stop_module(MOCK, GATEWAY)


def client(key=harness.CLIENT_KEY):
    return openai.OpenAI(base_url=GATEWAY.url + "/v1", api_key=key, max_retries=0, timeout=20)


def access_record(request_id, timeout=40.0):
    return harness.access_record(GATEWAY, request_id, timeout)


def metrics():
    return harness.metrics(GATEWAY)


class ChargingTest(unittest.TestCase):
    def setUp(self):
        MOCK.reset()

    def abandon_stream(self, model, chunks=2):
        """Starts a stream of ``model`` with the long prompt, reads ``chunks`` chunks, and hangs up; the request id."""
        raw = client().chat.completions.with_raw_response.create(model=model, messages=LONG_PROMPT, stream=True)
        request_id = raw.headers["x-request-id"]
        stream = raw.parse()
        got = 0
        for _ in stream:
            got += 1
            if got == chunks:
                break
        stream.close()
        self.assertEqual(got, chunks, "the stream ended before the client hung up")
        return request_id


class TestAbandonedStreams(ChargingTest):
    def test_the_providers_usage_is_charged_after_the_client_left(self):
        """OpenAI and Gemini report usage only at the end of a stream: Portico reads on after the client
        hangs up and charges what the provider reported (the mock: 11 prompt, 5 completion tokens)."""
        for model in ("oai/long", "gem/gemini-long"):
            with self.subTest(model=model):
                rid = self.abandon_stream(model)
                ai = access_record(rid)["ai"]
                self.assertEqual((ai["prompt_tokens"], ai["completion_tokens"]), (11, 5), ai)
                self.assertFalse(ai["usage_estimated"], ai)
                self.assertAlmostEqual(ai["cost_usd"], (11 * 1.0 + 5 * 2.0) / 1e6, places=12)

    def test_a_provider_that_reports_no_usage_is_charged_an_estimate(self):
        """No usage from the provider at all: the prompt is counted with a tokenizer (5,000 words are
        thousands of tokens) and the output seen; the record says it is an estimate."""
        for model in ("oai/nousage-long", "gem/gemini-nousage-long"):
            with self.subTest(model=model, stream="abandoned"):
                ai = access_record(self.abandon_stream(model))["ai"]
                self.assertTrue(ai["usage_estimated"], ai)
                self.assertGreater(ai["prompt_tokens"], 4000, ai)
                self.assertGreater(ai["completion_tokens"], 0, ai)
                self.assertGreater(ai["cost_usd"], 4000 / 1e6, ai)
            with self.subTest(model=model, stream=False):
                raw = client().chat.completions.with_raw_response.create(model=model, messages=LONG_PROMPT)
                ai = access_record(raw.headers["x-request-id"])["ai"]
                self.assertTrue(ai["usage_estimated"], ai)
                self.assertGreater(ai["prompt_tokens"], 4000, ai)
                self.assertGreater(ai["completion_tokens"], 40, ai)
        self.assertRegex(metrics(), r'portico_ai_usage_estimated_total\{provider="oai"\} [1-9]')

    def test_an_answer_that_fails_after_the_provider_took_the_call_is_charged_its_prompt(self):
        """The provider accepted the call and bills it; its answer is unusable (not JSON): the client gets
        502, and the call is charged the estimated prompt, marked as an estimate."""
        with self.assertRaises(openai.APIStatusError) as cm:
            client().chat.completions.with_raw_response.create(model="oai/garbage", messages=LONG_PROMPT)
        self.assertEqual(cm.exception.status_code, 502)
        ai = access_record(cm.exception.response.headers["x-request-id"])["ai"]
        self.assertTrue(ai["usage_estimated"], ai)
        self.assertGreater(ai["prompt_tokens"], 4000, ai)

    def test_reported_usage_is_not_an_estimate(self):
        raw = client().chat.completions.with_raw_response.create(model="oai/long", messages=QUESTION)
        ai = access_record(raw.headers["x-request-id"])["ai"]
        self.assertEqual((ai["prompt_tokens"], ai["completion_tokens"], ai["usage_estimated"]), (11, 5, False))


class TestBudgets(ChargingTest):
    def test_a_model_budget_counts_the_model_called_whatever_its_name(self):
        """frank's $0.0001/day budget is on the alias frank-4o (oai gpt-4o). Two calls spend it; then
        gpt-4o is refused by every name (alias, provider/model, a dated version, another alias routing to
        it), while another model, or the fallback target of another alias, is still served."""
        frank = client(harness.FRANK_KEY)
        for _ in range(2):
            frank.chat.completions.create(model="frank-4o", messages=QUESTION)
        for name in ("frank-4o", "oai/gpt-4o", "oai/gpt-4o-2024-08-06"):
            with self.subTest(name=name):
                with self.assertRaises(openai.RateLimitError) as cm:
                    frank.chat.completions.create(model=name, messages=QUESTION)
                self.assertIn("budget", cm.exception.message)
                self.assertGreaterEqual(int(cm.exception.response.headers["retry-after"]), 1)
        r = frank.chat.completions.create(model="oai/gpt-4o-mini", messages=QUESTION)
        self.assertEqual(r.choices[0].message.content, "Hello from openai gpt-4o-mini")
        MOCK.reset()
        # frank-any tries gpt-4o first: outside the budget now, so its fallback serves without calling it.
        r = frank.chat.completions.create(model="frank-any", messages=QUESTION)
        self.assertEqual(r.choices[0].message.content, "Hello from anthropic claude-sonnet-4")
        self.assertEqual([rec["path"] for rec in MOCK.requests()], ["/v1/messages"])


class TestPrices(ChargingTest):
    def cost(self, model, key=harness.CLIENT_KEY):
        raw = client(key).chat.completions.with_raw_response.create(model=model, messages=QUESTION)
        return access_record(raw.headers["x-request-id"])["ai"]

    def test_models_are_priced_by_exact_id(self):
        """o3-pro and o1-pro have their own prices (never o3's or o1's); a dated id is priced as its
        model. The mock reports 11 prompt tokens (4 cached) and 5 completion tokens."""
        for model, usd in (("oai/o3-pro", (11 * 20 + 5 * 80) / 1e6),
                           ("oai/o1-pro", (11 * 150 + 5 * 600) / 1e6),
                           ("oai/gpt-5-pro", (11 * 15 + 5 * 120) / 1e6),
                           ("oai/gpt-4o-2024-08-06", (7 * 2.5 + 4 * 1.25 + 5 * 10) / 1e6)):
            with self.subTest(model=model):
                ai = self.cost(model)
                self.assertAlmostEqual(ai["cost_usd"], usd, places=12, msg=ai)
                self.assertFalse(ai["unpriced"], ai)

    def test_an_unpriced_model_is_counted_and_refused_under_a_usd_budget(self):
        """Without a USD budget an unpriced model runs at $0 and is counted; for grace (a USD budget on
        everything) it is refused with 403 model_unpriced before any provider is called."""
        ai = self.cost("oai/mystery-model")
        self.assertEqual((ai["cost_usd"], ai["unpriced"]), (0, True), ai)
        self.assertIn('portico_ai_unpriced_requests_total{model="mystery-model",provider="oai"} 1', metrics())
        MOCK.reset()
        with self.assertRaises(openai.PermissionDeniedError) as cm:
            client(harness.GRACE_KEY).chat.completions.create(model="oai/mystery-model", messages=QUESTION)
        self.assertEqual((cm.exception.code, cm.exception.param), ("model_unpriced", "model"))
        self.assertEqual(MOCK.requests(), [], "nothing is sent to a provider")
        ai = self.cost("oai/gpt-4o", harness.GRACE_KEY)  # priced models still run for her
        self.assertGreater(ai["cost_usd"], 0)


class TestWhatAnswered(ChargingTest):
    def test_headers_say_which_provider_and_model_answered_and_what_it_cost(self):
        """After a fallback: x-portico-provider and -model name the target that answered, -attempts counts
        the provider requests, and a whole answer carries its cost (claude-sonnet-4: 7 fresh and 4 cached
        prompt tokens, 5 completion tokens)."""
        raw = client().chat.completions.with_raw_response.create(model="fallback-500", messages=QUESTION)
        h = raw.headers
        self.assertEqual((h["x-portico-provider"], h["x-portico-model"], h["x-portico-attempts"]),
                         ("claude", "claude-sonnet-4", "2"))
        usd = (7 * 3.0 + 4 * 0.30 + 5 * 15.0) / 1e6
        self.assertAlmostEqual(float(h["x-portico-cost-usd"]), usd, places=8)
        ai = access_record(h["x-request-id"])["ai"]
        self.assertEqual((ai["attempts"], ai["provider"], ai["provider_model"]), (2, "claude", "claude-sonnet-4"))
        raw = client().chat.completions.with_raw_response.create(model="fallback-500", messages=QUESTION,
                                                                 stream=True)
        h = raw.headers
        self.assertEqual((h["x-portico-provider"], h["x-portico-attempts"]), ("claude", "2"))
        self.assertNotIn("x-portico-cost-usd", h, "a stream's cost is not known when its head is sent")
        self.assertTrue(list(raw.parse()))


class TestModelAccess(ChargingTest):
    def test_a_consumer_and_a_group_use_only_what_they_were_granted(self):
        """frank is granted frank-4o, frank-any and oai/*; grace, through her group, oai/* and gemini-flash.
        Anything else is 403 model_not_allowed naming the model, before any provider is called, and
        /v1/models lists only what the caller may use. team-a, named by no grant, may use everything."""
        for key, granted, refused in ((harness.FRANK_KEY, "oai/gpt-4o-mini", "gemini-flash"),
                                      (harness.GRACE_KEY, "gemini-flash", "claude-sonnet")):
            with self.subTest(key=key):
                c = client(key)
                c.chat.completions.create(model=granted, messages=QUESTION)
                MOCK.reset()
                with self.assertRaises(openai.PermissionDeniedError) as cm:
                    c.chat.completions.create(model=refused, messages=QUESTION)
                self.assertEqual((cm.exception.code, cm.exception.param), ("model_not_allowed", "model"))
                self.assertIn(refused, cm.exception.message)
                self.assertEqual(MOCK.requests(), [])
                with self.assertRaises(openai.NotFoundError):
                    c.models.retrieve(refused)
        self.assertEqual({m.id for m in client(harness.FRANK_KEY).models.list()}, {"frank-4o", "frank-any"})
        self.assertEqual({m.id for m in client(harness.GRACE_KEY).models.list()}, {"gemini-flash"})
        self.assertIn("claude-sonnet", {m.id for m in client().models.list()})

    def test_a_route_offers_only_its_models(self):
        """A route with ai.models offers those alone, below its own prefix."""
        c = openai.OpenAI(base_url=GATEWAY.url + "/restricted/v1", api_key=harness.CLIENT_KEY, max_retries=0,
                          timeout=20)
        r = c.chat.completions.create(model="claude-sonnet", messages=QUESTION)
        self.assertEqual(r.choices[0].message.content, "Hello from anthropic claude-sonnet-4")
        with self.assertRaises(openai.PermissionDeniedError) as cm:
            c.chat.completions.create(model="gemini-flash", messages=QUESTION)
        self.assertEqual(cm.exception.code, "model_not_allowed")
        self.assertEqual([m.id for m in c.models.list()], ["claude-sonnet"])


class TestCache(ChargingTest):
    """The route /cached/v1 has the AI response cache (ttl 10m, per consumer)."""

    def cached(self, key=harness.CLIENT_KEY):
        return openai.OpenAI(base_url=GATEWAY.url + "/cached/v1", api_key=key, max_retries=0, timeout=20)

    def test_a_repeated_request_is_answered_from_the_cache_for_free(self):
        ask = [{"role": "user", "content": "cache me"}]
        first = self.cached().chat.completions.with_raw_response.create(model="claude-sonnet", messages=ask,
                                                                         temperature=0)
        self.assertEqual(first.headers["x-cache"], "MISS")
        # The same model by another name is the same entry.
        second = self.cached().chat.completions.with_raw_response.create(model="claude/claude-sonnet-4",
                                                                          messages=ask, temperature=0)
        self.assertEqual(second.headers["x-cache"], "HIT")
        self.assertEqual(second.headers["x-portico-provider"], "claude")
        self.assertEqual(second.parse().choices[0].message.content, first.parse().choices[0].message.content)
        self.assertEqual(len(MOCK.requests()), 1, "one provider call")
        ai = access_record(second.headers["x-request-id"])["ai"]
        self.assertEqual((ai["cache"], ai["cost_usd"], ai["prompt_tokens"]), ("hit", 0, 0))
        self.assertIn('portico_ai_cache_requests_total{result="hit"}', metrics())

    def test_streams_are_replayed_as_streams(self):
        ask = [{"role": "user", "content": "stream me"}]
        texts = []
        for expected in ("MISS", "HIT"):
            raw = self.cached().chat.completions.with_raw_response.create(model="gem/gemini-2.0-flash", messages=ask,
                                                                           temperature=0, stream=True)
            self.assertEqual(raw.headers["x-cache"], expected)
            texts.append("".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices))
        self.assertEqual(texts, ["Hello from gemini gemini-2.0-flash"] * 2)
        self.assertEqual(len(MOCK.requests()), 1)

    def test_only_repeatable_answers_and_each_consumers_own(self):
        ask = [{"role": "user", "content": "sample me"}]
        for _ in range(2):
            raw = self.cached().chat.completions.with_raw_response.create(model="oai/gpt-4o", messages=ask)
            self.assertNotIn("x-cache", raw.headers, "the default temperature samples: not cached")
        self.assertEqual(len(MOCK.requests()), 2)
        MOCK.reset()
        self.cached().chat.completions.create(model="oai/gpt-4o", messages=ask, temperature=0)
        raw = self.cached(harness.GRACE_KEY).chat.completions.with_raw_response.create(
            model="oai/gpt-4o", messages=ask, temperature=0)
        self.assertEqual(raw.headers["x-cache"], "MISS", "another consumer's entry is not shared")
        self.assertEqual(len(MOCK.requests()), 2)


class TestModelNamesInUrls(ChargingTest):
    def test_names_that_would_change_the_providers_url_are_refused(self):
        """Azure puts the deployment, Gemini the model, into the URL: a name with '/', '?', '#' or '..' is
        refused with 400 invalid_model, and nothing reaches the provider."""
        r = client().chat.completions.create(model="az/gpt-4o", messages=QUESTION)
        self.assertEqual(r.choices[0].message.content, "Hello from openai gpt-4o")
        [rec] = MOCK.requests()
        self.assertEqual(rec["path"], "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
        self.assertEqual(rec["headers"].get("api-key"), harness.PROVIDER_KEY)
        MOCK.reset()
        for model in ("az/dalle3/images/generations?api-version=2024-02-01#", "az/x/../../../v1/embeddings#",
                      "az/..", "gem/../../v1/x", "gem/gemini-2.0-flash:streamGenerateContent?alt=sse#",
                      "gem/a%2Fb"):
            with self.subTest(model=model):
                with self.assertRaises(openai.BadRequestError) as cm:
                    client().chat.completions.create(model=model, messages=QUESTION)
                self.assertEqual((cm.exception.code, cm.exception.param), ("invalid_model", "model"))
        self.assertEqual(MOCK.requests(), [], "nothing is sent to a provider")


if __name__ == "__main__":
    unittest.main()
