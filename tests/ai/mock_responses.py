"""OpenAI's Responses API for ``mock_providers.py``: ``POST /v1/responses`` (and Azure's
``/openai/v1/responses``, the deployment in ``model``). Stdlib only.

Checked as the real API checks (a 400 in OpenAI's shape otherwise): ``model`` and ``input`` required, no
unknown top-level parameter, input items of known types (``message`` with role user/assistant/system/
developer and the content part types that role may send, ``function_call`` with ``call_id``/``name``/
``arguments``, ``function_call_output`` answering a ``function_call`` of the same input unless
``previous_response_id`` is set, ``reasoning``, ``item_reference``), function tools in the flat form (a
chat-style ``{"function": {...}}`` is refused), ``text.format``, ``max_output_tokens`` of at least 16, and a
``previous_response_id`` that starts with ``resp_``.

The answer follows the chat scripts (``plan_answer``, ``begin``: fail-429, fail-500, garbage, cut, slow, long,
nousage, tools, json, leak-key; tool results answered "Tool said: ..."): a Response object, or typed
``event:``/``data:`` stream events with ``sequence_number``, ending in ``response.completed`` with the usage
(none for ``nousage``).
"""

import json
import time

FIELDS = {"background", "conversation", "include", "input", "instructions", "max_output_tokens",
          "max_tool_calls", "metadata", "model", "parallel_tool_calls", "previous_response_id", "prompt",
          "prompt_cache_key", "reasoning", "safety_identifier", "service_tier", "store", "stream",
          "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p", "truncation",
          "user"}
PARTS = {"user": {"input_text", "input_image", "input_file"}, "system": {"input_text"},
         "developer": {"input_text"}, "assistant": {"output_text", "refusal"}}
HOSTED_TOOLS = {"web_search", "web_search_preview", "file_search", "code_interpreter", "computer_use_preview",
                "image_generation", "mcp", "local_shell", "custom"}


def check(body):
    """OpenAI's error text for a request it would refuse, else None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "Missing required parameter: 'model'."
    if "input" not in body:
        return "Missing required parameter: 'input'."
    for key in body:
        if key not in FIELDS:
            return f"Unknown parameter: '{key}'."
    prev = body.get("previous_response_id")
    if prev is not None and not (isinstance(prev, str) and prev.startswith("resp_")):
        return f"Invalid 'previous_response_id': '{prev}'. Expected an ID that begins with 'resp'."
    mot = body.get("max_output_tokens")
    if mot is not None and (not isinstance(mot, int) or mot < 16):
        return f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {mot}."
    items = body["input"]
    if not isinstance(items, (str, list)):
        return "Invalid type for 'input': expected one of a string or array of input items."
    calls = set()
    for i, item in enumerate(items if isinstance(items, list) else []):
        err = item_error(i, item, calls, prev is not None)
        if err:
            return err
    for j, tool in enumerate(body.get("tools") or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            if "function" in tool or not isinstance(tool.get("name"), str):
                return f"Missing required parameter: 'tools[{j}].name'."
        elif kind not in HOSTED_TOOLS:
            return f"Invalid value: '{kind}'. Supported values are: 'function', 'file_search', 'web_search', ..."
    fmt = (body.get("text") or {}).get("format")
    if fmt is not None:
        if fmt.get("type") not in ("text", "json_object", "json_schema"):
            return f"Invalid value: '{fmt.get('type')}' for 'text.format.type'."
        if fmt["type"] == "json_schema" and not (fmt.get("name") and isinstance(fmt.get("schema"), dict)):
            return "Missing required parameter: 'text.format.name' or 'text.format.schema'."
    return None


def item_error(i, item, calls, has_previous):
    if not isinstance(item, dict):
        return f"Invalid type for 'input[{i}]': expected an object."
    kind = item.get("type", "message")
    if kind == "message":
        role, content = item.get("role"), item.get("content")
        if role not in PARTS:
            return (f"Invalid value: '{role}'. Supported values are: 'assistant', 'system', 'developer', "
                    f"and 'user'.")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") not in PARTS[role]:
                    got = part.get("type") if isinstance(part, dict) else part
                    return f"Invalid value: '{got}'. Supported values for 'input[{i}].content[{j}]' in a {role} " \
                           f"message are: {sorted(PARTS[role])}."
        elif not isinstance(content, str):
            return f"Missing required parameter: 'input[{i}].content'."
    elif kind == "function_call":
        if not all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")):
            return f"Missing required parameter: 'input[{i}].call_id', 'name' or 'arguments'."
        calls.add(item["call_id"])
    elif kind == "function_call_output":
        if item.get("call_id") not in calls and not has_previous:
            return f"No tool call found for function call output with call_id {item.get('call_id')}."
        if not isinstance(item.get("output"), (str, list)):
            return f"Missing required parameter: 'input[{i}].output'."
    elif kind not in ("reasoning", "item_reference"):
        return f"Invalid value: '{kind}' for 'input[{i}].type'."
    return None


def tool_results(body):
    items = body["input"] if isinstance(body["input"], list) else []
    out = []
    for item in items:
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            o = item["output"]
            out.append(o if isinstance(o, str) else "".join(p.get("text", "") for p in o))
    return out


def serve(h, body, m):
    """Answers ``body`` on handler ``h``; ``m`` is the mock_providers module (scripts, numbers, ``bad``)."""
    err = check(body)
    if err:
        raise m.bad(err)
    model, stream = body["model"], body.get("stream") is True
    plan = h.begin("openai", model, tool_results(body), stream)
    if plan is None:
        return
    kind, text = plan
    usage = {"input_tokens": m.PROMPT_TOKENS, "input_tokens_details": {"cached_tokens": m.CACHED_TOKENS},
             "output_tokens": m.COMPLETION_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": m.PROMPT_TOKENS + m.COMPLETION_TOKENS}
    if "nousage" in model:
        usage = None
    if kind == "text":
        items = [{"id": "msg_mock", "type": "message", "status": "completed", "role": "assistant",
                  "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}]
    else:
        items = [{"id": f"fc_mock_{i}", "type": "function_call", "status": "completed", "call_id": f"call_mock_{i}",
                  "name": n, "arguments": json.dumps(a, separators=(",", ":"))} for i, (n, a) in enumerate(m.TOOL_CALLS)]
    response = {"id": "resp_mock", "object": "response", "created_at": int(time.time()), "status": "completed",
                "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"), "model": model, "output": items,
                "parallel_tool_calls": body.get("parallel_tool_calls", True),
                "previous_response_id": body.get("previous_response_id"),
                "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
                "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
                "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
                "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0), "truncation": "disabled",
                "usage": usage, "metadata": body.get("metadata") or {}}
    if not stream:
        return h.send(200, response)

    seq = iter(range(1 << 30))

    def ev(kind, **data):
        data = dict(type=kind, sequence_number=next(seq), **data)
        h.event(f"event: {kind}\ndata: {json.dumps(data)}\n\n")

    h.start_stream()
    started = dict(response, status="in_progress", output=[], usage=None)
    ev("response.created", response=started)
    ev("response.in_progress", response=started)
    for n, item in enumerate(items):
        if item["type"] == "message":
            ev("response.output_item.added", output_index=n, item=dict(item, status="in_progress", content=[]))
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            ev("response.content_part.added", item_id=item["id"], output_index=n, content_index=0, part=part)
            for piece in m.text_pieces(text):
                ev("response.output_text.delta", item_id=item["id"], output_index=n, content_index=0, delta=piece,
                   logprobs=[])
                if "cut" in model:
                    return h.cut_stream()
            ev("response.output_text.done", item_id=item["id"], output_index=n, content_index=0, text=text,
               logprobs=[])
            ev("response.content_part.done", item_id=item["id"], output_index=n, content_index=0,
               part=item["content"][0])
        else:
            ev("response.output_item.added", output_index=n, item=dict(item, status="in_progress", arguments=""))
            for piece in m.json_pieces(json.loads(item["arguments"])):
                ev("response.function_call_arguments.delta", item_id=item["id"], output_index=n, delta=piece)
                if "cut" in model:
                    return h.cut_stream()
            ev("response.function_call_arguments.done", item_id=item["id"], output_index=n, name=item["name"],
               arguments=item["arguments"])
        ev("response.output_item.done", output_index=n, item=item)
    ev("response.completed", response=response)
    h.end_stream()
