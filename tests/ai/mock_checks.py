"""What the real Anthropic and Gemini APIs refuse, for ``mock_providers.py``: a translation that sends
something the provider does not know, or in a shape it does not accept, gets the 400 the provider gives.

Each check returns the provider's error text, or None when the request passes. Stdlib only.

Anthropic (Messages API): a first message that is not the user's, two messages of one role in a row,
unknown top-level fields and content-block fields ("Extra inputs are not
permitted"), unknown block types, a `cache_control` other than ``{"type": "ephemeral"}`` (with an optional
``ttl``), a `document` whose source is not a base64 PDF or plain text, and extended thinking's rules: a
``budget_tokens`` of at least 1024 and below ``max_tokens``, no ``temperature`` but 1, ``top_p`` only from
0.95, no forced tool use.

Gemini (generateContent): a first content that is not the user's, two contents of one side in a row,
unknown top-level, ``generationConfig``, ``thinkingConfig`` and part fields
("Invalid JSON payload received. Unknown name ..."), and ``inlineData`` without a MIME type or data.
"""

ANTHROPIC_FIELDS = {"model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
                    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
                    "container", "mcp_servers"}
ANTHROPIC_BLOCKS = {
    "text": {"text", "cache_control", "citations"},
    "image": {"source", "cache_control"},
    "document": {"source", "title", "context", "citations", "cache_control"},
    "tool_use": {"id", "name", "input", "cache_control"},
    "tool_result": {"tool_use_id", "content", "is_error", "cache_control"},
    "thinking": {"thinking", "signature"},
    "redacted_thinking": {"data"},
}
ANTHROPIC_TOOL_FIELDS = {"name", "description", "input_schema", "cache_control", "type"}
MIN_THINKING_BUDGET = 1024

GEMINI_FIELDS = {"model", "contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
                 "cachedContent"}
GEMINI_CONFIG = {"temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences",
                 "presencePenalty", "frequencyPenalty", "seed", "responseMimeType", "responseSchema",
                 "responseJsonSchema", "responseLogprobs", "logprobs", "thinkingConfig", "responseModalities",
                 "speechConfig", "mediaResolution"}
GEMINI_THINKING = {"thinkingBudget", "includeThoughts", "thinkingLevel"}
GEMINI_PART = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "thought", "thoughtSignature",
               "executableCode", "codeExecutionResult", "videoMetadata"}


def cache_control_error(where, cc):
    if not isinstance(cc, dict) or cc.get("type") != "ephemeral" or set(cc) - {"type", "ttl"}:
        return f"{where}.cache_control: Input tag found using 'type' does not match the expected tag 'ephemeral'"
    if cc.get("ttl", "5m") not in ("5m", "1h"):
        return f"{where}.cache_control.ttl: Input should be '5m' or '1h'"
    return None


def block_error(where, block):
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in ANTHROPIC_BLOCKS:
        return f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
    extra = set(block) - ANTHROPIC_BLOCKS[kind] - {"type"}
    if extra:
        return f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted"
    if "cache_control" in block and (err := cache_control_error(where, block["cache_control"])):
        return err
    source = block.get("source") or {}
    if kind == "document":
        ok = {"base64": "application/pdf", "text": "text/plain"}.get(source.get("type"))
        if ok is None or source.get("media_type") != ok or not isinstance(source.get("data"), str):
            return f"{where}.source: a document must be a base64 PDF or plain text"
    if kind == "image" and source.get("type") == "base64" and not str(source.get("media_type")).startswith("image/"):
        return f"{where}.source.media_type: Input should be an image type"
    if kind == "tool_result" and isinstance(block.get("content"), list):
        for j, inner in enumerate(block["content"]):
            if err := block_error(f"{where}.content.{j}", inner):
                return err
    return None


def check_anthropic(body):
    extra = sorted(set(body) - ANTHROPIC_FIELDS)
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    roles = [m.get("role") if isinstance(m, dict) else None for m in body.get("messages") or []]
    if roles and roles[0] != "user":
        return 'messages: first message must use the "user" role'
    for prev, role in zip(roles, roles[1:]):
        if prev == role:
            return (f'messages: roles must alternate between "user" and "assistant", '
                    f'but found multiple "{role}" roles in a row')
    system = body.get("system")
    for j, block in enumerate(system if isinstance(system, list) else []):
        if err := block_error(f"system.{j}", block):
            return err
    for i, tool in enumerate(body.get("tools") or []):
        extra = sorted(set(tool) - ANTHROPIC_TOOL_FIELDS)
        if extra:
            return f"tools.{i}.{extra[0]}: Extra inputs are not permitted"
        if "cache_control" in tool and (err := cache_control_error(f"tools.{i}", tool["cache_control"])):
            return err
    for i, m in enumerate(body.get("messages") or []):
        content = m.get("content") if isinstance(m, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            if err := block_error(f"messages.{i}.content.{j}", block):
                return err
    thinking = body.get("thinking")
    if thinking is None:
        return None
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled" or not isinstance(budget, int):
        return "thinking: expected {type: enabled, budget_tokens: int}"
    if budget < MIN_THINKING_BUDGET:
        return f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
    if body.get("max_tokens", 0) <= budget:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    if body.get("temperature", 1) != 1:
        return "`temperature` may only be set to 1 when thinking is enabled"
    if body.get("top_p", 1) < 0.95:
        return "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled"
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def unknown_name(name, where):
    return f'Invalid JSON payload received. Unknown name "{name}" at \'{where}\': Cannot find field.'


def check_gemini(body):
    for name in sorted(set(body) - GEMINI_FIELDS):
        return unknown_name(name, "")
    # function responses (role "user", or the older "function") are the user's turn
    turns = ["model" if c.get("role") == "model" else "user" for c in body.get("contents") or []]
    if turns and turns[0] != "user":
        return "First content should be with role 'user', got model"
    if any(prev == turn for prev, turn in zip(turns, turns[1:])):
        return "Please ensure that multiturn requests alternate between user and model."
    config = body.get("generationConfig") or {}
    for name in sorted(set(config) - GEMINI_CONFIG):
        return unknown_name(name, "generation_config")
    for name in sorted(set(config.get("thinkingConfig") or {}) - GEMINI_THINKING):
        return unknown_name(name, "generation_config.thinking_config")
    budget = (config.get("thinkingConfig") or {}).get("thinkingBudget")
    if budget is not None and (not isinstance(budget, int) or budget < -1 or budget > 32768):
        return f"thinking_budget: {budget} is out of range"
    contents = list(body.get("contents") or []) + ([body["systemInstruction"]] if "systemInstruction" in body else [])
    for i, c in enumerate(contents):
        for j, p in enumerate(c.get("parts") or []):
            for name in sorted(set(p) - GEMINI_PART):
                return unknown_name(name, f"contents[{i}].parts[{j}]")
            data = p.get("inlineData")
            if data is not None and not (data.get("mimeType") and data.get("data")):
                return f"* contents[{i}].parts[{j}].inline_data: mime_type and data are required"
    return None


def cache_control_in(body):
    """Whether any `cache_control` is set in an Anthropic request (the mock then reports a cache write)."""
    def walk(v):
        if isinstance(v, dict):
            return "cache_control" in v or any(walk(x) for x in v.values())
        return isinstance(v, list) and any(walk(x) for x in v)
    return walk(body)
