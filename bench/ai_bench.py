#!/usr/bin/env python3
"""AI scenario: the latency a gateway adds to LLM calls, and its max rps,
Portico side by side with LiteLLM's proxy, on the same mock provider.

The mock provider is nginx serving fixed answers in OpenAI's format (a chat
completion, and a 20-chunk SSE stream ending in [DONE]) and in Anthropic's
format (a Messages answer), so the mock is never the bottleneck. Scenarios:
chat, stream, anthropic (chat in, Anthropic out), responses (OpenAI's
Responses API in, chat out) and messages-in (Anthropic's Messages API in,
chat out). Each gateway
is pinned to GATEWAY_CPUS; nginx and the load generator to CLIENT_CPUS.

Added latency: wrk with 1 connection (sequential requests) against the mock
directly and through each gateway; p50 and p99 differences. Max rps: wrk with
CONNECTIONS connections. Every response is checked (status 200 and a body
that contains the expected answer); a run with wrong responses is VOID.

LiteLLM comes from PyPI (`litellm[proxy]`) in a venv at $LITELLM_VENV
(default .venv-litellm); `make bench-ai` installs it. Without it, only
Portico is measured and the table says so.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (the nginx/portico helpers of the main benchmark)

MOCK_PORT = 19580
PORTICO_PORT = 19581
LITELLM_PORT = 19582

CHAT = {
    "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": "mock-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the mock"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
}
ANTHROPIC = {
    "id": "msg_mock", "type": "message", "role": "assistant", "model": "mock-model",
    "content": [{"type": "text", "text": "Hello from the mock"}], "stop_reason": "end_turn",
    "usage": {"input_tokens": 11, "output_tokens": 5},
}


def sse_stream():
    events = []
    words = ["Hello", " from", " the", " mock"] * 5
    for i, w in enumerate(words):
        delta = {"role": "assistant", "content": w} if i == 0 else {"content": w}
        events.append({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": "mock-model",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    events.append({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": "mock-model",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": "mock-model",
                   "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 20, "total_tokens": 31}})
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def mock_block(work):
    root = os.path.join(work, "mock")
    for d in ("plain/v1/chat", "stream/v1/chat", "anthropic/v1"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(os.path.join(root, "plain/v1/chat/completions"), "w") as f:
        json.dump(CHAT, f)
    with open(os.path.join(root, "stream/v1/chat/completions"), "w") as f:
        f.write(sse_stream())
    with open(os.path.join(root, "anthropic/v1/messages"), "w") as f:
        json.dump(ANTHROPIC, f)
    # POST to a static file is 405 in nginx; `error_page 405 =200 $uri` serves the file.
    return (
        f"  server {{\n    listen 127.0.0.1:{MOCK_PORT} backlog=4096;\n    keepalive_requests 100000;\n"
        f"    root {root};\n    error_page 405 =200 $uri;\n"
        f"    location /plain/ {{ default_type application/json; }}\n"
        f"    location /anthropic/ {{ default_type application/json; }}\n"
        f"    location /stream/ {{ default_type text/event-stream; }}\n  }}"
    )


def portico_config(work, threads):
    return f"""server:
  listeners: [{{address: 127.0.0.1:{PORTICO_PORT}}}]
  threads: {threads}
  work_stealing: false
  access_log: {{path: {work}/portico-ai-access.log}}
  pid_file: {work}/portico-ai.pid
  upgrade_sock: {work}/portico-ai.sock
ai:
  providers:
    plain: {{kind: openai_compatible, base_url: "http://127.0.0.1:{MOCK_PORT}/plain/v1", keys: [{{env: BENCH_PROVIDER_KEY}}]}}
    stream: {{kind: openai_compatible, base_url: "http://127.0.0.1:{MOCK_PORT}/stream/v1", keys: [{{env: BENCH_PROVIDER_KEY}}]}}
    claude: {{kind: anthropic, base_url: "http://127.0.0.1:{MOCK_PORT}/anthropic", keys: [{{env: BENCH_PROVIDER_KEY}}]}}
  models:
    mock-chat: {{targets: [{{provider: plain, model: mock-model}}]}}
    mock-stream: {{targets: [{{provider: stream, model: mock-model}}]}}
    mock-claude: {{targets: [{{provider: claude, model: mock-model}}]}}
routes:
  - name: llm
    paths: [/v1/*]
    ai: {{}}
"""


def litellm_config():
    m = f"http://127.0.0.1:{MOCK_PORT}"
    return f"""model_list:
  - model_name: mock-chat
    litellm_params: {{model: openai/mock-model, api_base: "{m}/plain/v1", api_key: bench}}
  - model_name: mock-stream
    litellm_params: {{model: openai/mock-model, api_base: "{m}/stream/v1", api_key: bench}}
  - model_name: mock-claude
    litellm_params: {{model: anthropic/mock-model, api_base: "{m}/anthropic", api_key: bench}}
litellm_settings:
  drop_params: true
general_settings:
  master_key: sk-bench
"""


WRK_LUA = bench.WRK_LUA_COMMON + r"""
function init(args)
  bad = 0
  wrk.method = "POST"
  wrk.body = os.getenv("BENCH_BODY")
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer sk-bench"
  expect = os.getenv("BENCH_EXPECT")
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, expect, 1, true) then bad = bad + 1 end
end
"""


CHAT_PATH = "/v1/chat/completions"


def request_body(shape, model, stream):
    """A client's request in the API of `shape`: chat, responses (OpenAI's Responses API) or messages
    (Anthropic's Messages API inbound); the last two are translated to the mock's chat completions."""
    if shape == "responses":
        return {"model": model, "input": "hi"}
    if shape == "messages":
        return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


def wrk(url, body, expect, conns, duration, cpus, lua):
    return bench.run_wrk(url, body, duration, conns, cpus, lua, extra_env={"BENCH_EXPECT": expect})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/portico"))
    p.add_argument("--gateway-cpus", default=os.environ.get("GATEWAY_CPUS", "0"))
    p.add_argument("--client-cpus", default=os.environ.get("CLIENT_CPUS", "1"))
    p.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", "1")))
    p.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", "10")))
    p.add_argument("--connections", type=int, default=int(os.environ.get("CONNECTIONS", "50")))
    p.add_argument("--litellm-venv", default=os.environ.get("LITELLM_VENV", os.path.join(ROOT, ".venv-litellm")))
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="portico-ai-bench-")
    os.chmod(work, 0o755)
    lua = os.path.join(work, "ai.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)
    mock = bench.Nginx(work, "mock", mock_block(work), 1, args.client_cpus)
    # (name, model, the mock's own path for the baseline, stream, expected text, gateway path, body shape)
    scenarios = [
        ("chat", "mock-chat", "/plain/v1/chat/completions", False, "Hello from the mock", CHAT_PATH, "chat"),
        ("stream", "mock-stream", "/stream/v1/chat/completions", True, "[DONE]", CHAT_PATH, "chat"),
        ("anthropic", "mock-claude", None, False, "Hello from the mock", CHAT_PATH, "chat"),
        ("responses", "mock-chat", None, False, "Hello from the mock", "/v1/responses", "responses"),
        ("messages-in", "mock-chat", None, False, "Hello from the mock", "/v1/messages", "messages"),
    ]
    gateways = []
    litellm_bin = os.path.join(args.litellm_venv, "bin", "litellm")
    results = {}
    try:
        bench.wait_port(MOCK_PORT)
        # The mock alone: the baseline latency.
        for name, model, direct, stream, expect, _, _ in scenarios:
            if direct:
                body = json.dumps({"model": "mock-model", "stream": stream,
                                   "messages": [{"role": "user", "content": "hi"}]})
                url = f"http://127.0.0.1:{MOCK_PORT}{direct}"
                results[("mock", name, "latency")] = wrk(url, body, expect, 1, args.duration, args.client_cpus, lua)
        procs = {}
        conf = os.path.join(work, "portico-ai.yaml")
        with open(conf, "w") as f:
            f.write(portico_config(work, args.threads))
        env = dict(os.environ, BENCH_PROVIDER_KEY="bench", RUST_LOG="warn")
        procs["portico"] = (["taskset", "-c", args.gateway_cpus, args.binary, "run", "-c", conf], env, PORTICO_PORT)
        if os.path.exists(litellm_bin):
            lconf = os.path.join(work, "litellm.yaml")
            with open(lconf, "w") as f:
                f.write(litellm_config())
            lenv = dict(os.environ, LITELLM_LOG="ERROR")
            procs["litellm"] = (["taskset", "-c", args.gateway_cpus, litellm_bin, "--config", lconf, "--port",
                                 str(LITELLM_PORT), "--num_workers", str(args.threads)], lenv, LITELLM_PORT)
        for gw, (cmd, genv, port) in procs.items():
            log = open(os.path.join(work, f"{gw}.log"), "w")
            proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=genv)
            try:
                deadline = time.time() + 180
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"{gw} exited at start; see its log")
                    try:
                        bench.wait_port(port, timeout=1)
                        break
                    except RuntimeError:
                        if time.time() > deadline:
                            raise
                time.sleep(1)
                gateways.append(gw)
                for name, model, _, stream, expect, path, shape in scenarios:
                    body = json.dumps(request_body(shape, model, stream))
                    url = f"http://127.0.0.1:{port}{path}"
                    wrk(url, body, expect, 4, 2, args.client_cpus, lua)  # warm-up
                    results[(gw, name, "latency")] = wrk(url, body, expect, 1, args.duration, args.client_cpus, lua)
                    results[(gw, name, "load")] = wrk(url, body, expect, args.connections, args.duration,
                                                      args.client_cpus, lua)
                    r = results[(gw, name, "load")]
                    print(f"{gw:8} {name:9} {r['rps']:8.0f} rps  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms"
                          f"{'  VOID' if r['bad'] else ''}", flush=True)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                log.close()
    finally:
        mock.stop()

    out = [f"# AI gateways: Portico vs LiteLLM, {datetime.datetime.now():%Y-%m-%d %H:%M}", "",
           f"Machine: {os.cpu_count()} CPUs; gateway on CPUs {args.gateway_cpus} ({args.threads} worker); mock "
           f"provider (nginx, fixed answers) and wrk on CPUs {args.client_cpus}. Added latency: 1 connection, "
           f"p50/p99 through the gateway minus the mock's own (the anthropic, responses and messages-in "
           f"scenarios are translated, so their baseline is the OpenAI mock's chat). responses: OpenAI's "
           f"Responses API in, chat completions to the provider; messages-in: Anthropic's Messages API in, "
           f"chat completions to the provider. Max rps: {args.connections} connections, {args.duration}s.", ""]
    if "litellm" not in gateways:
        out += ["LiteLLM was not installed (make bench-ai installs it); only Portico was measured.", ""]
    out += ["| scenario | gateway | added p50 ms | added p99 ms | max rps | p99 at max ms |", "|---|---|---:|---:|---:|---:|"]
    for name, _, direct, _, _, _, _ in scenarios:
        base = results.get(("mock", name, "latency")) or results.get(("mock", "chat", "latency"))
        for gw in gateways:
            lat, load = results[(gw, name, "latency")], results[(gw, name, "load")]
            void = lat["bad"] + load["bad"]
            cells = [name, gw, f"{lat['p50'] - base['p50']:.3f}", f"{lat['p99'] - base['p99']:.3f}",
                     f"{load['rps']:,.0f}" if not void else f"VOID ({void} bad)", f"{load['p99']:.2f}"]
            out.append("| " + " | ".join(cells) + " |")
    table = "\n".join(out) + "\n"
    print(table)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", f"ai-{datetime.datetime.now():%Y-%m-%d-%H%M}.md")
    with open(path, "w") as f:
        f.write(table)
    print(f"written to {os.path.relpath(path, ROOT)}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
