"""The rest of OpenAI's surface through Portico, with the official ``openai`` SDK: completions (whole and
streamed), images, speech (audio comes back as audio), transcriptions (a multipart form, its model
replaced), moderations and rerank, passed through to OpenAI-format providers; Anthropic and Gemini targets,
which lack these endpoints, are skipped or refused with 400 ``unsupported_for_provider``."""

import base64
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

import openai  # noqa: E402

MOCK = None
GATEWAY = None


def setUpModule():
    global MOCK, GATEWAY
    MOCK, GATEWAY = harness.start_module()


def tearDownModule():
    harness.stop_module(MOCK, GATEWAY)


def access_record(request_id, timeout=40.0):
    return harness.access_record(GATEWAY, request_id, timeout)


class SurfaceTest(unittest.TestCase):
    def setUp(self):
        MOCK.reset()
        self.client = openai.OpenAI(base_url=GATEWAY.url + "/v1", api_key=harness.CLIENT_KEY, max_retries=0,
                                    timeout=20)

    def last(self):
        recs = MOCK.requests()
        self.assertTrue(recs, f"the mock got nothing; portico log:\n{GATEWAY.log()}")
        return recs[-1]


class TestSurface(SurfaceTest):
    def test_completions_whole_and_streamed_are_charged(self):
        raw = self.client.completions.with_raw_response.create(model="oai/gpt-3.5-turbo-instruct", prompt="Say")
        r = raw.parse()
        self.assertEqual(r.choices[0].text, "Completed by gpt-3.5-turbo-instruct")
        self.assertEqual((self.last()["path"], self.last()["body"]["model"]), ("/v1/completions", "gpt-3.5-turbo-instruct"))
        ai = access_record(raw.headers["x-request-id"])["ai"]
        self.assertEqual((ai["prompt_tokens"], ai["completion_tokens"]), (9, 3))
        self.assertAlmostEqual(ai["cost_usd"], (9 * 1.5 + 3 * 2.0) / 1e6, places=12)
        chunks = list(self.client.completions.create(model="oai/gpt-3.5-turbo-instruct", prompt="Say", stream=True))
        self.assertEqual("".join(c.choices[0].text for c in chunks if c.choices), "Completed by gpt-3.5-turbo-instruct")

    def test_images(self):
        r = self.client.images.generate(model="oai/gpt-image-1", prompt="a cat")
        self.assertEqual(base64.b64decode(r.data[0].b64_json), b"image by gpt-image-1")
        self.assertEqual(self.last()["path"], "/v1/images/generations")

    def test_speech_comes_back_as_audio(self):
        raw = self.client.audio.speech.with_raw_response.create(model="oai/tts-1", voice="alloy", input="hi there")
        self.assertEqual(raw.headers["content-type"], "audio/mpeg")
        self.assertEqual(raw.content, b"ID3 speech by tts-1: hi there")

    def test_transcriptions_take_a_form_with_the_model_replaced(self):
        r = self.client.audio.transcriptions.create(model="oai/whisper-1",
                                                    file=("talk.wav", b"RIFF1234", "audio/wav"))
        self.assertEqual(r.text, "Transcribed talk.wav (8 bytes) by whisper-1")
        rec = self.last()
        self.assertEqual(rec["path"], "/v1/audio/transcriptions")
        self.assertIn("multipart/form-data", rec["headers"]["content-type"])
        self.assertNotIn("oai/whisper-1", rec["body"])
        self.assertEqual(rec["headers"].get("authorization"), f"Bearer {harness.PROVIDER_KEY}")

    def test_moderations_and_rerank(self):
        r = self.client.moderations.create(model="oai/omni-moderation-latest", input="hello")
        self.assertFalse(r.results[0].flagged)
        r = self.client.post("/rerank", cast_to=object, body={
            "model": "oai/rerank-v3", "query": "q", "documents": ["a", "longest doc", "mid doc"]})
        self.assertEqual([x["index"] for x in r["results"]], [1, 2, 0])
        self.assertEqual(self.last()["body"]["model"], "rerank-v3")


class TestProvidersWithoutTheEndpoint(SurfaceTest):
    def test_anthropic_and_gemini_are_refused_by_name_or_skipped(self):
        for model in ("claude/claude-sonnet-4", "gem/gemini-2.0-flash"):
            with self.subTest(model=model):
                with self.assertRaises(openai.BadRequestError) as cm:
                    self.client.completions.create(model=model, prompt="Say")
                self.assertEqual(cm.exception.code, "unsupported_for_provider")
                self.assertIn(model.split("/")[0], cm.exception.message)
        self.assertEqual(MOCK.requests(), [])
        # An alias whose first target is Anthropic: the OpenAI target behind it serves.
        r = self.client.completions.create(model="claude-then-oai", prompt="Say")
        self.assertEqual(r.choices[0].text, "Completed by gpt-4o")


if __name__ == "__main__":
    unittest.main()
