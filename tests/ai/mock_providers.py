#!/usr/bin/env python3
"""Mock LLM providers (OpenAI, Anthropic, Gemini wire formats) for Portico's AI end-to-end tests.

Stdlib only. ``python3 tests/ai/mock_providers.py --port N`` serves on 127.0.0.1:N (``--port 0`` picks a
free port); the first line on stdout is ``mock_providers listening on http://127.0.0.1:PORT``.

Endpoints
  OpenAI     POST /v1/chat/completions (JSON, or SSE when ``stream: true``), POST /v1/embeddings,
             GET /v1/models.                                   Auth: ``Authorization: Bearer <key>``
             POST /v1/responses, the Responses API (``mock_responses.py``; Azure: /openai/v1/responses).
  Anthropic  POST /v1/messages (JSON, or SSE events when ``stream: true``).
                                      Auth: ``x-api-key: <key>`` plus an ``anthropic-version`` header
  Gemini     POST /v1beta/models/{model}:generateContent, :streamGenerateContent?alt=sse,
             :batchEmbedContents.                                     Auth: ``x-goog-api-key: <key>``
  Control    GET /_mock/requests -> [{method, path (with query), headers (lowercased), body}],
             POST /_mock/reset clears that list. Control calls are not recorded.

Accepted keys come from ``--keys`` or env ``MOCK_KEYS`` (comma-separated). A wrong or missing key is a
401 in the provider's own error shape. Requests are checked roughly the way the real APIs check them
(required fields, Anthropic roles and tool ids, Gemini roles; both want the user to speak first and the
roles to alternate) so translation bugs show up as 400s.

Behaviour is scripted by the requested model name (body ``model`` for OpenAI/Anthropic, path for Gemini):
  fail-429  429 + ``Retry-After: 1``, provider-shaped error "rate limited by mock"
  fail-429-bare  the same 429 without Retry-After
  fail-500  500, provider-shaped error
  garbage   200 with body ``not json at all``
  cut       streams start normally, then the connection is closed mid-stream (no final events)
  slow      streams wait 0.3 s before each event after the first
  long      the answer is LONG_WORDS words, streamed one word per event, LONG_DELAY apart
  nousage   no usage at all: none in the answer, no usage chunk, no usageMetadata (OpenAI and Gemini)
  tools     answer is two tool calls, get_weather({"city":"Paris"}) and get_time({"tz":"CET"})
            (Anthropic puts a short text block before them, as Claude does)
  json      answer text is {"label":"positive","score":0.9}
  leak-key  400 whose message echoes the credential received, as real providers do
  otherwise answer text is "Hello from <provider> <model>".
A request whose history holds tool results is answered "Tool said: <r1> | <r2> ..." whatever the model
(except the failure scripts), so a tool round trip can use the same `tools` model twice.

Usage: prompt 11 (Anthropic input_tokens 7 + cache_read_input_tokens 4; Gemini promptTokenCount 11 with
cachedContentTokenCount 4; OpenAI prompt_tokens_details.cached_tokens 4), completion 5. An Anthropic request
with any `cache_control` also reports cache_creation_input_tokens 2.
Reasoning: Anthropic with `thinking` answers a thinking block first (streamed as thinking_delta and
signature_delta); Gemini with a non-zero thinkingBudget reports thoughtsTokenCount 3 (and a thought part
first when includeThoughts is set). ``mock_checks.py`` holds what else the real APIs refuse.
Embeddings: input i with text t gets the vector [i, len(t), 0.5, -0.25].

Streams use HTTP/1.1 chunked encoding, one chunk per event, flushed at once. Gemini events end with
"\\r\\n\\r\\n" as Google's server sends them; OpenAI and Anthropic use "\\n\\n".
"""

import argparse
import base64
import json
import os
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import mock_checks  # what the real APIs refuse, beside this file
import mock_surface  # completions, images, audio, moderations, rerank
import mock_responses  # OpenAI's Responses API, beside this file

PROMPT_TOKENS, CACHED_TOKENS, COMPLETION_TOKENS = 11, 4, 5
CACHE_WRITE_TOKENS, THOUGHT_TOKENS, THOUGHT = 2, 3, "Thinking it over."
SLOW_DELAY = 0.3
LONG_DELAY = 0.05
COUNT_TOKENS_BASE = 1000
LONG_WORDS = 40
JSON_ANSWER = '{"label":"positive","score":0.9}'
TOOL_CALLS = [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
OPENAI_MODELS = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
GEMINI_PATH = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent|batchEmbedContents)$")
AZURE_PATH = re.compile(r"^/openai/deployments/([A-Za-z0-9._-]+)/(chat/completions|embeddings)$")


class Reject(Exception):
    """An error answer: HTTP status, error kind (bad_request, auth, not_found, rate_limit, server), text."""

    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def bad(message):
    return Reject(400, "bad_request", message)


# ----------------------------------------------------------------------------------------------------------
# Error shapes
# ----------------------------------------------------------------------------------------------------------

OPENAI_ERR = {"bad_request": ("invalid_request_error", None), "auth": ("invalid_request_error", "invalid_api_key"),
              "not_found": ("invalid_request_error", "not_found"), "rate_limit": ("requests", "rate_limit_exceeded"),
              "server": ("server_error", None)}
ANTHROPIC_ERR = {"bad_request": "invalid_request_error", "auth": "authentication_error", "not_found": "not_found_error",
                 "rate_limit": "rate_limit_error", "server": "api_error"}
GEMINI_ERR = {"bad_request": "INVALID_ARGUMENT", "auth": "UNAUTHENTICATED", "not_found": "NOT_FOUND",
              "rate_limit": "RESOURCE_EXHAUSTED", "server": "INTERNAL"}


def error_body(provider, err):
    """The provider's own JSON error object for a Reject."""
    if provider == "anthropic":
        return {"type": "error", "error": {"type": ANTHROPIC_ERR[err.kind], "message": err.message}}
    if provider == "gemini":
        return {"error": {"code": err.status, "message": err.message, "status": GEMINI_ERR[err.kind]}}
    typ, code = OPENAI_ERR[err.kind]
    return {"error": {"message": err.message, "type": typ, "param": None, "code": code}}


# ----------------------------------------------------------------------------------------------------------
# Scripted answers
# ----------------------------------------------------------------------------------------------------------

def scripted_failure(model):
    """The Reject (or "garbage") a model name asks for, else None."""
    if "fail-429-bare" in model:
        err = Reject(429, "rate_limit", "rate limited by mock, no Retry-After")
        err.bare = True
        return err
    if "fail-429" in model:
        return Reject(429, "rate_limit", "rate limited by mock")
    if "fail-500" in model:
        return Reject(500, "server", "internal error from mock")
    if "garbage" in model:
        return "garbage"
    return None


def plan_answer(provider, model, tool_results):
    """("tools", None) or ("text", str): what the mock answers."""
    if tool_results:
        return "text", "Tool said: " + " | ".join(tool_results)
    if "tools" in model:
        return "tools", None
    if "json" in model:
        return "text", JSON_ANSWER
    if "long" in model:
        return "text", " ".join(f"word{i}" for i in range(LONG_WORDS))
    return "text", f"Hello from {provider} {model}"


def text_pieces(text):
    """Split text into stream deltas: words with their leading spaces, or 8-char slices of one long word."""
    words = re.findall(r"\s*\S+", text) or [text]
    if len(words) == 1 and len(text) > 8:
        return [text[i:i + 8] for i in range(0, len(text), 8)]
    return words


def json_pieces(args):
    """Compact JSON of a tool's arguments, in 6-char slices (as models stream them)."""
    s = json.dumps(args, separators=(",", ":"))
    return [s[i:i + 6] for i in range(0, len(s), 6)]


def text_of(content):
    """Text of an OpenAI/Anthropic content value: a string or a list of {type: text, text} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def embedding_vector(i, text):
    return [float(i), float(len(text)), 0.5, -0.25]


# ----------------------------------------------------------------------------------------------------------
# The HTTP handler
# ----------------------------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive. ``self.server`` carries ``keys``, ``records``, ``lock``."""

    protocol_version = "HTTP/1.1"
    server_version = "MockProviders/1.0"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("mock: " + (fmt % args) + "\n")

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    # -- plumbing ------------------------------------------------------------------------------------------

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status, body, content_type="application/json", headers=()):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.events_sent = 0

    def event(self, text):
        """Send one SSE event as one chunk, after the `slow` delay when asked for."""
        if self.slow and self.events_sent:
            time.sleep(self.slow)
        raw = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()
        self.events_sent += 1

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut_stream(self):
        """Drop the connection without the terminating chunk."""
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def dispatch(self):
        url = urlsplit(self.path)
        raw = self.read_body()
        self.raw = raw
        if url.path.startswith("/_mock/"):
            return self.control(url.path)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        with self.server.lock:
            self.server.records.append({"method": self.command, "path": self.path, "headers": headers, "body": body})
        self.slow = False
        provider = "gemini" if url.path.startswith("/v1beta/") else (
            "anthropic" if url.path.startswith("/v1/messages") else (
                "azure" if url.path.startswith("/openai/") else "openai"))
        try:
            self.route(url.path, headers, body, provider)
        except Reject as err:
            extra = [("Retry-After", "1")] if err.status == 429 and not getattr(err, "bare", False) else []
            if provider == "anthropic":
                extra.append(("request-id", "req_mock"))
            self.send(err.status, error_body(provider, err), headers=extra)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a request shaped unlike the API's: answer 400, as the provider would
            sys.stderr.write(f"mock: {self.command} {self.path}: {exc!r}\n")
            self.send(400, error_body(provider, bad(f"mock: malformed request: {exc!r}")))

    def control(self, path):
        if path == "/_mock/requests" and self.command == "GET":
            with self.server.lock:
                return self.send(200, list(self.server.records))
        if path == "/_mock/reset" and self.command == "POST":
            with self.server.lock:
                self.server.records.clear()
            return self.send(200, {"ok": True})
        self.send(404, {"error": "unknown control path"})

    def route(self, path, headers, body, provider):
        az = AZURE_PATH.match(path)
        if provider == "azure":  # Azure OpenAI: the deployment in the path, `api-key`, `api-version`
            if path != "/openai/v1/responses" and (not az or "api-version=" not in urlsplit(self.path).query):
                raise Reject(404, "not_found", f"mock: no Azure route for {self.command} {self.path}")
            if headers.get("api-key") not in self.server.keys:
                raise Reject(401, "auth", "Access denied due to invalid subscription key (mock)")
            if path == "/openai/v1/responses":  # the v1 surface: the deployment is the body's `model`
                return self.openai_responses(body)
            body["model"] = az.group(1)
            return self.openai_chat(body) if az.group(2) == "chat/completions" else self.openai_embeddings(body)
        m = GEMINI_PATH.match(path)
        known = {("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings"), ("GET", "/v1/models"),
                 ("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("POST", "/v1/responses")}
        if not m and (self.command, path) not in known and path not in mock_surface.PATHS:
            raise Reject(404, "not_found", f"mock: no route for {self.command} {path}")
        self.check_auth(provider, headers)
        if path in mock_surface.PATHS:
            return mock_surface.handle(self, path, body, self.raw, bad, scripted_failure)
        if self.command == "POST" and not isinstance(body, dict):
            raise bad("request body must be a JSON object")
        if path == "/v1/models":
            return self.send(200, {"object": "list", "data": [
                {"id": mid, "object": "model", "created": 1700000000, "owned_by": "mock"} for mid in OPENAI_MODELS]})
        if path == "/v1/embeddings":
            return self.openai_embeddings(body)
        if path == "/v1/chat/completions":
            return self.openai_chat(body)
        if path == "/v1/messages":
            return self.anthropic(body)
        if path == "/v1/messages/count_tokens":
            return self.anthropic_count(body)
        if path == "/v1/responses":
            return self.openai_responses(body)
        model, method = m.group(1), m.group(2)
        if method == "batchEmbedContents":
            return self.gemini_embed(model, body)
        return self.gemini(model, method == "streamGenerateContent", body)

    def check_auth(self, provider, headers):
        keys = self.server.keys
        if provider == "openai":
            auth = headers.get("authorization", "")
            if not (auth.startswith("Bearer ") and auth[7:] in keys):
                raise Reject(401, "auth", "Incorrect API key provided (mock)")
        elif provider == "anthropic":
            if headers.get("x-api-key") not in keys:
                raise Reject(401, "auth", "invalid x-api-key")
            if not headers.get("anthropic-version"):
                raise bad("anthropic-version: header is required")
        elif headers.get("x-goog-api-key") not in keys:
            raise Reject(401, "auth", "API key not valid. Please pass a valid API key.")

    def begin(self, provider, model, tool_results, stream):
        """Common start of a chat call: scripted failures, `slow`; returns (kind, text)."""
        failure = scripted_failure(model)
        if failure == "garbage":
            self.send(200, b"not json at all")
            return None
        if failure:
            raise failure
        if "leak-key" in model:
            # As real providers do: the credential echoed in the error text.
            h = {k.lower(): v for k, v in self.headers.items()}
            got = h.get("authorization") or h.get("x-api-key") or h.get("x-goog-api-key") or ""
            raise Reject(400, "bad_request",
                         f"Incorrect API key provided: {got}. You can find your key at sk-live-abcdef123456 "
                         f"or AIzaSyA1234567890abcdefghijklmnop.")
        self.slow = (SLOW_DELAY if "slow" in model else LONG_DELAY if "long" in model else 0) if stream else 0
        return plan_answer(provider, model, tool_results)

    # -- OpenAI --------------------------------------------------------------------------------------------

    def openai_chat(self, body):
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise bad("you must provide a model parameter")
        if not isinstance(messages, list) or not messages:
            raise bad("messages: must be a non-empty array")
        results = [text_of(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "tool"]
        stream = body.get("stream") is True
        plan = self.begin("openai", model, results, stream)
        if plan is None:
            return
        kind, text = plan
        base = {"id": "chatcmpl-mock", "created": int(time.time()), "model": model, "system_fingerprint": None}
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                 "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                 "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}
        calls = [{"id": f"call_mock_{i}", "type": "function",
                  "function": {"name": n, "arguments": json.dumps(a, separators=(",", ":"))}}
                 for i, (n, a) in enumerate(TOOL_CALLS)]
        finish = "tool_calls" if kind == "tools" else "stop"
        if not stream:
            msg = {"role": "assistant", "content": text, "refusal": None}
            if kind == "tools":
                msg["tool_calls"] = calls
            answer = dict(base, object="chat.completion", usage=usage, choices=[
                {"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}])
            if "nousage" in model:
                del answer["usage"]
            return self.send(200, answer)
        with_usage = bool((body.get("stream_options") or {}).get("include_usage")) and "nousage" not in model

        def chunk(delta, finish_reason=None):
            c = dict(base, object="chat.completion.chunk",
                     choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])
            if with_usage:
                c["usage"] = None
            self.event(f"data: {json.dumps(c)}\n\n")

        self.start_stream()
        chunk({"role": "assistant", "content": "" if kind == "text" else None})
        if kind == "text":
            for piece in text_pieces(text):
                chunk({"content": piece})
                if "cut" in model:
                    return self.cut_stream()
        else:
            for i, (name, args) in enumerate(TOOL_CALLS):
                chunk({"tool_calls": [{"index": i, "id": f"call_mock_{i}", "type": "function",
                                       "function": {"name": name, "arguments": ""}}]})
                for piece in json_pieces(args):
                    chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
                    if "cut" in model:
                        return self.cut_stream()
        chunk({}, finish)
        if with_usage:
            self.event(f"data: {json.dumps(dict(base, object='chat.completion.chunk', choices=[], usage=usage))}\n\n")
        self.event("data: [DONE]\n\n")
        self.end_stream()

    def openai_responses(self, body):
        if not isinstance(body, dict):
            raise bad("request body must be a JSON object")
        return mock_responses.serve(self, body, sys.modules[__name__])

    def openai_embeddings(self, body):
        model, inputs = body.get("model"), body.get("input")
        if not isinstance(model, str) or not model:
            raise bad("you must provide a model parameter")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) and t for t in inputs):
            raise bad("input: must be a non-empty string or array of non-empty strings")
        failure = scripted_failure(model)
        if failure == "garbage":
            return self.send(200, b"not json at all")
        if failure:
            raise failure
        as_b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(inputs):
            vec = embedding_vector(i, text)
            if as_b64:
                vec = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vec})
        tokens = sum(len(t.split()) for t in inputs)
        self.send(200, {"object": "list", "data": data, "model": model,
                        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    # -- Anthropic -----------------------------------------------------------------------------------------

    def anthropic_count(self, body):
        """Anthropic's token counting: model and messages required, no max_tokens; the count is
        COUNT_TOKENS_BASE plus the number of messages, so a test can tell it from an estimate."""
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise bad("model: Field required")
        if "max_tokens" in body:
            raise bad("max_tokens: Extra inputs are not permitted")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise bad("messages: Field required")
        self.send(200, {"input_tokens": COUNT_TOKENS_BASE + len(body["messages"])})

    def anthropic(self, body):
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise bad("model: Field required")
        if not isinstance(body.get("max_tokens"), int):
            raise bad("max_tokens: Field required")
        if not isinstance(messages, list) or not messages:
            raise bad("messages: at least one message is required")
        system = body.get("system")
        if system is not None and not (isinstance(system, str) or (
                isinstance(system, list) and all(b.get("type") == "text" for b in system))):
            raise bad("system: Input should be a valid string or a list of text blocks")
        for i, tool in enumerate(body.get("tools") or []):
            if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
                raise bad(f"tools.{i}: `name` and `input_schema` are required")
        if err := mock_checks.check_anthropic(body):
            raise bad(err)
        results, prev_tool_ids = [], set()
        for i, m in enumerate(messages):
            role = m.get("role") if isinstance(m, dict) else None
            if role not in ("user", "assistant"):
                raise bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            content = m.get("content")
            blocks = content if isinstance(content, list) else []
            if not isinstance(content, (str, list)) or content in ("", []):
                raise bad(f"messages.{i}: content must be a non-empty string or list")
            ids = set()
            for b in blocks:
                if b.get("type") == "text" and not b.get("text"):
                    raise bad(f"messages.{i}: text content blocks must be non-empty")
                if b.get("type") == "tool_use":
                    ids.add(b.get("id"))
                if b.get("type") == "tool_result":
                    if role != "user" or b.get("tool_use_id") not in prev_tool_ids:
                        raise bad(f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: "
                                  f"{b.get('tool_use_id')}")
                    results.append(text_of(b.get("content")))
            prev_tool_ids = ids
        if prev_tool_ids:
            raise bad("tool_use ids were found without tool_result blocks immediately after")
        stream = body.get("stream") is True
        plan = self.begin("anthropic", model, results, stream)
        if plan is None:
            return
        kind, text = plan
        usage = {"input_tokens": PROMPT_TOKENS - CACHED_TOKENS, "output_tokens": COMPLETION_TOKENS,
                 "cache_creation_input_tokens": CACHE_WRITE_TOKENS if mock_checks.cache_control_in(body) else 0,
                 "cache_read_input_tokens": CACHED_TOKENS}
        stop = "tool_use" if kind == "tools" else "end_turn"
        blocks = [{"type": "text", "text": text if kind == "text" else "Let me check."}]
        if body.get("thinking"):
            blocks.insert(0, {"type": "thinking", "thinking": THOUGHT, "signature": "sig_mock"})
        if kind == "tools":
            blocks += [{"type": "tool_use", "id": f"toolu_mock_{i}", "name": n, "input": a}
                       for i, (n, a) in enumerate(TOOL_CALLS)]
        message = {"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                   "stop_reason": stop, "stop_sequence": None}
        if not stream:
            return self.send(200, dict(message, content=blocks, usage=usage))

        def ev(name, data):
            self.event(f"event: {name}\ndata: {json.dumps(dict(type=name, **data))}\n\n")

        self.start_stream()
        start = dict(message, content=[], stop_reason=None, usage=dict(usage, output_tokens=1))
        ev("message_start", {"message": start})
        ev("ping", {})
        for idx, block in enumerate(blocks):
            if block["type"] == "thinking":
                ev("content_block_start", {"index": idx, "content_block": {"type": "thinking", "thinking": ""}})
                ev("content_block_delta", {"index": idx, "delta": {"type": "thinking_delta", "thinking": THOUGHT}})
                ev("content_block_delta", {"index": idx, "delta": {"type": "signature_delta", "signature": "sig"}})
            elif block["type"] == "text":
                ev("content_block_start", {"index": idx, "content_block": {"type": "text", "text": ""}})
                for piece in text_pieces(block["text"]):
                    ev("content_block_delta", {"index": idx, "delta": {"type": "text_delta", "text": piece}})
                    if "cut" in model:
                        return self.cut_stream()
            else:
                ev("content_block_start", {"index": idx, "content_block": dict(block, input={})})
                for piece in [""] + json_pieces(block["input"]):
                    ev("content_block_delta", {"index": idx,
                                               "delta": {"type": "input_json_delta", "partial_json": piece}})
            ev("content_block_stop", {"index": idx})
        ev("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                             "usage": {"output_tokens": COMPLETION_TOKENS}})
        ev("message_stop", {})
        self.end_stream()

    # -- Gemini --------------------------------------------------------------------------------------------

    def gemini(self, model, stream, body):
        if stream and "alt=sse" not in urlsplit(self.path).query:
            raise bad("mock: streamGenerateContent is only served with ?alt=sse")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise bad("* GenerateContentRequest.contents: contents is not specified")
        if err := mock_checks.check_gemini(body):
            raise bad(err)
        results = []
        for i, c in enumerate(contents):
            if c.get("role") not in ("user", "model", "function", None):
                raise bad(f"* GenerateContentRequest.contents[{i}].role: Please use a valid role: user, model.")
            parts = c.get("parts")
            if not isinstance(parts, list) or not parts:
                raise bad(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
            for p in parts:
                fr = p.get("functionResponse") if isinstance(p, dict) else None
                if fr is not None:
                    resp = fr.get("response")
                    if not fr.get("name") or not isinstance(resp, dict):
                        raise bad(f"* contents[{i}]: functionResponse needs a name and a response object")
                    results.append(str(resp["content"]) if list(resp) == ["content"]
                                   else json.dumps(resp, separators=(",", ":")))
        plan = self.begin("gemini", model, results, stream)
        if plan is None:
            return
        kind, text = plan
        usage = {"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": COMPLETION_TOKENS,
                 "totalTokenCount": PROMPT_TOKENS + COMPLETION_TOKENS, "cachedContentTokenCount": CACHED_TOKENS}
        if kind == "tools":
            parts = [{"functionCall": {"name": n, "args": a}} for n, a in TOOL_CALLS]
        else:
            parts = [{"text": text}]
        thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        if thinking.get("thinkingBudget", 0) != 0:
            usage["thoughtsTokenCount"] = THOUGHT_TOKENS
            usage["totalTokenCount"] += THOUGHT_TOKENS
            if thinking.get("includeThoughts"):
                parts.insert(0, {"text": THOUGHT, "thought": True})
        if not stream:
            answer = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                      "usageMetadata": usage, "modelVersion": model, "responseId": "mock-resp"}
            if "nousage" in model:
                del answer["usageMetadata"]
            return self.send(200, answer)
        pieces = [[{"text": t}] for t in text_pieces(text)] if kind == "text" else [[p] for p in parts]
        self.start_stream()
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1 and "cut" not in model  # `cut`: every piece, then no final event
            cand = {"content": {"role": "model", "parts": piece}, "index": 0}
            event = {"candidates": [cand], "modelVersion": model, "responseId": "mock-resp"}
            if last:
                cand["finishReason"] = "STOP"
                if "nousage" not in model:
                    event["usageMetadata"] = usage
            self.event(f"data: {json.dumps(event)}\r\n\r\n")
        if "cut" in model:
            return self.cut_stream()
        self.end_stream()

    def gemini_embed(self, model, body):
        reqs = body.get("requests")
        if not isinstance(reqs, list) or not reqs:
            raise bad("* BatchEmbedContentsRequest.requests: requests is not specified")
        texts = []
        for i, r in enumerate(reqs):
            if r.get("model") != f"models/{model}":
                raise bad(f"* BatchEmbedContentsRequest.requests[{i}].model: Model names should be the same "
                          f"as the batch model models/{model}")
            parts = (r.get("content") or {}).get("parts") or []
            text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
            if not text:
                raise bad(f"* BatchEmbedContentsRequest.requests[{i}].content: content is empty")
            texts.append(text)
        failure = scripted_failure(model)
        if failure == "garbage":
            return self.send(200, b"not json at all")
        if failure:
            raise failure
        self.send(200, {"embeddings": [{"values": embedding_vector(i, t)} for i, t in enumerate(texts)]})


# ----------------------------------------------------------------------------------------------------------
# Server
# ----------------------------------------------------------------------------------------------------------

def make_server(host="127.0.0.1", port=0, keys=None, verbose=False):
    """A ThreadingHTTPServer serving the mock; call serve_forever() (or run it in a thread)."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.keys = {k.strip() for k in (keys if keys is not None else
                                       os.environ.get("MOCK_KEYS", "").split(",")) if k.strip()}
    server.records, server.lock, server.verbose = [], threading.Lock(), verbose
    return server


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    ap.add_argument("--keys", help="comma-separated accepted keys (default: env MOCK_KEYS)")
    ap.add_argument("--verbose", action="store_true", help="log requests on stderr")
    args = ap.parse_args(argv)
    server = make_server(args.host, args.port, args.keys.split(",") if args.keys else None, args.verbose)
    if not server.keys:
        print("mock_providers: warning: no keys (set MOCK_KEYS or --keys); every call gets 401", file=sys.stderr)
    print(f"mock_providers listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
