"""The rest of OpenAI's surface, for the mock: completions (streamed too), images, speech, transcriptions
(a multipart form), moderations and rerank. Each checks what the real endpoint requires and answers in its
shape; ``handle`` returns False for other paths."""

import base64
import json
import time
from email.parser import BytesParser
from email.policy import HTTP

PATHS = {"/v1/completions", "/v1/images/generations", "/v1/audio/speech", "/v1/audio/transcriptions",
         "/v1/moderations", "/v1/rerank"}
#: What every endpoint reports as usage, where it reports tokens.
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def form_fields(content_type, raw):
    """{name: (filename, bytes)} of a multipart/form-data body."""
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    if not msg.is_multipart():
        return None
    fields = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


def handle(h, path, body, raw, bad, scripted_failure):
    """Answers ``path`` on the handler ``h``; ``bad(msg)`` makes a 400, ``scripted_failure(model)`` the
    scripted 429/500 of a model name."""
    if path == "/v1/audio/transcriptions":
        fields = form_fields(h.headers.get("Content-Type", ""), raw)
        if fields is None:
            raise bad("Content-Type must be multipart/form-data")
        if "file" not in fields or not fields["file"][0]:
            raise bad("file: field required")
        model = fields.get("model", (None, b""))[1].decode()
    else:
        if not isinstance(body, dict):
            raise bad("request body must be a JSON object")
        model = body.get("model")
    if not model and path != "/v1/moderations":
        raise bad("you must provide a model parameter")
    failure = scripted_failure(model or "")
    if failure and failure != "garbage":
        raise failure
    if path == "/v1/completions":
        if "prompt" not in body:
            raise bad("prompt: field required")
        return completions(h, model, body)
    if path == "/v1/images/generations":
        if not body.get("prompt"):
            raise bad("prompt: field required")
        return h.send(200, {"created": int(time.time()), "data": [
            {"b64_json": base64.b64encode(f"image by {model}".encode()).decode()}],
            "usage": {"input_tokens": 9, "output_tokens": 100, "total_tokens": 109}})
    if path == "/v1/audio/speech":
        if not body.get("input") or not body.get("voice"):
            raise bad("input and voice: fields required")
        return h.send(200, f"ID3 speech by {model}: {body['input']}".encode(), content_type="audio/mpeg")
    if path == "/v1/audio/transcriptions":
        name, data = fields["file"]
        return h.send(200, {"text": f"Transcribed {name} ({len(data)} bytes) by {model}",
                            "usage": {"type": "tokens", "input_tokens": 14, "output_tokens": 7, "total_tokens": 21}})
    if path == "/v1/moderations":
        if "input" not in body:
            raise bad("input: field required")
        return h.send(200, {"id": "modr-mock", "model": model or "omni-moderation-latest", "results": [
            {"flagged": False, "categories": {"violence": False}, "category_scores": {"violence": 0.01}}]})
    if path == "/v1/rerank":
        docs = body.get("documents")
        if not body.get("query") or not isinstance(docs, list) or not docs:
            raise bad("query and documents: fields required")
        ranked = sorted(range(len(docs)), key=lambda i: -len(str(docs[i])))
        return h.send(200, {"model": model, "results": [
            {"index": i, "relevance_score": round(1.0 / (r + 1), 3)} for r, i in enumerate(ranked)],
            "usage": {"total_tokens": 12}})
    return False


def completions(h, model, body):
    text = f"Completed by {model}"
    base = {"id": "cmpl-mock", "object": "text_completion", "created": int(time.time()), "model": model}
    if body.get("stream") is not True:
        return h.send(200, dict(base, usage=USAGE, choices=[
            {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}]))
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    h.start_stream()
    for i, word in enumerate(text.split(" ")):
        piece = word if i == 0 else " " + word
        h.event(f"data: {json.dumps(dict(base, choices=[{'text': piece, 'index': 0, 'logprobs': None, 'finish_reason': None}]))}\n\n")
    h.event(f"data: {json.dumps(dict(base, choices=[{'text': '', 'index': 0, 'logprobs': None, 'finish_reason': 'stop'}]))}\n\n")
    if with_usage:
        h.event(f"data: {json.dumps(dict(base, choices=[], usage=USAGE))}\n\n")
    h.event("data: [DONE]\n\n")
    h.end_stream()
