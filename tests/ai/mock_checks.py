"""What the real Anthropic and Gemini APIs refuse, for ``mock_providers.py``: a translation that sends
something the provider does not accept gets the 400 the provider gives.

Each check returns the provider's error text, or None when the request passes. Stdlib only.

Anthropic (Messages API): a first message that is not the user's, two messages of one role in a row.

Gemini (generateContent): a first content that is not the user's, two contents of one side in a row.
"""


def check_anthropic(body):
    roles = [m.get("role") if isinstance(m, dict) else None for m in body.get("messages") or []]
    if roles and roles[0] != "user":
        return 'messages: first message must use the "user" role'
    for prev, role in zip(roles, roles[1:]):
        if prev == role:
            return (f'messages: roles must alternate between "user" and "assistant", '
                    f'but found multiple "{role}" roles in a row')
    return None


def check_gemini(body):
    # function responses (role "user", or the older "function") are the user's turn
    turns = ["model" if c.get("role") == "model" else "user" for c in body.get("contents") or []]
    if turns and turns[0] != "user":
        return "First content should be with role 'user', got model"
    if any(prev == turn for prev, turn in zip(turns, turns[1:])):
        return "Please ensure that multiturn requests alternate between user and model."
    return None
