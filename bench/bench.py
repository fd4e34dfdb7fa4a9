#!/usr/bin/env python3
"""Side-by-side benchmark: nginx (the baseline) against Portico, in the manner
of APISIX's benchmark/run.sh. See bench/README.md for the method.

Every scenario proxies to the same upstream (nginx returning a fixed body of
12 B, 1 KiB or 16 KiB). The gateway under test is pinned to GATEWAY_CPUS, the
upstream and the load generator to CLIENT_CPUS. Scenarios run in alternation
(A B C D, A B C D, ...) for ROUNDS rounds; the table reports medians. Every
response's status and body are checked (wrk: a Lua `response` hook compares
the body; oha: status distribution and bytes per response); a scenario with
a single wrong response is marked VOID.

Standard library only, so it runs wherever python3 does.
"""

import argparse
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
API_KEY = "bench-key-0"
UPSTREAM_PORT = 19080
GATEWAY_PORT = 19000
ADMIN_PORT = 19001
SIZES = {"12B": 12, "1KiB": 1024, "16KiB": 16384}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def body_of(size):
    """A deterministic body of `size` bytes (letters, ending in a newline)."""
    text = ("portico-bench-" * (size // 14 + 1))[: size - 1] + "\n"
    return text


def wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def http_get(url, headers=None, timeout=5.0):
    """(status, lower-cased headers, body) of one GET; (0, {}, b"") when nothing answers."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    except OSError:
        return 0, {}, b""
    finally:
        conn.close()


def wait_http_ok(url, timeout=20.0, headers=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if http_get(url, headers)[0] == 200:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


def metric_sum(name):
    """The sum of every series of a Prometheus counter on the admin listener."""
    status, _, body = http_get(f"http://127.0.0.1:{ADMIN_PORT}/metrics")
    total = 0.0
    for line in body.decode(errors="replace").splitlines() if status == 200 else []:
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def chain_probe():
    """Checks that the chain still works: no key gets 401, a key gets RateLimit headers."""
    url = f"http://127.0.0.1:{GATEWAY_PORT}/12B"
    no_key = http_get(url)[0]
    status, head, _ = http_get(url, {"x-api-key": API_KEY})
    return no_key == 401 and status == 200 and "ratelimit-remaining" in head


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def proc_cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / CLK_TCK


def proc_rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def children(pid):
    """The pids whose parent is `pid`, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


class Nginx:
    """An nginx instance from a generated config in its own prefix dir."""

    def __init__(self, work, name, http_block, workers, cpus):
        self.dir = os.path.join(work, name)
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(
                f"worker_processes {workers};\npid {self.dir}/nginx.pid;\nerror_log {self.dir}/error.log;\n"
                f"events {{ worker_connections 20000; }}\n"
                f"http {{\n  access_log off;\n{http_block}\n}}\n"
            )
        subprocess.run(["taskset", "-c", cpus, "nginx", "-p", self.dir, "-c", self.conf], check=True)
        with open(os.path.join(self.dir, "nginx.pid")) as f:
            self.master = int(f.read().strip())

    def pids(self):
        return [self.master] + children(self.master)

    def stop(self):
        subprocess.call(["nginx", "-p", self.dir, "-c", self.conf, "-s", "stop"])
        deadline = time.time() + 10
        while time.time() < deadline and os.path.exists(f"/proc/{self.master}"):
            time.sleep(0.05)


def upstream_block(work):
    """Static files, one per size, from the page cache (nginx's config parser
    caps a `return` string at 4 KiB, so bodies are files)."""
    root = os.path.join(work, "www")
    os.makedirs(root, exist_ok=True)
    for name, size in SIZES.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(body_of(size))
    return (
        f"  open_file_cache max=16 inactive=1h;\n  open_file_cache_valid 1h;\n  default_type text/plain;\n"
        f"  server {{\n    listen 127.0.0.1:{UPSTREAM_PORT} reuseport backlog=4096;\n    keepalive_requests 100000;\n"
        f"    root {root};\n    etag off;\n  }}"
    )


def nginx_proxy_block():
    return (
        f"  upstream backend {{ server 127.0.0.1:{UPSTREAM_PORT}; keepalive 256; keepalive_requests 100000; }}\n"
        f"  server {{\n    listen 127.0.0.1:{GATEWAY_PORT} reuseport backlog=4096;\n    keepalive_requests 100000;\n"
        f"    location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n  }}"
    )


def portico_config(work, kind, threads):
    """kind: plain | chain | chain100."""
    log = "off" if kind == "plain" else os.path.join(work, "access.log")
    lines = [
        "server:",
        f"  listeners: [{{address: 127.0.0.1:{GATEWAY_PORT}}}]",
        f"  threads: {threads}",
        f"  work_stealing: {os.environ.get('WORK_STEALING', 'false')}",
        f"  admin: 127.0.0.1:{ADMIN_PORT}",
        f"  access_log: {{path: {log}}}",  # the default queue of 16,384 lines
        f"  pid_file: {work}/portico.pid",
        f"  upgrade_sock: {work}/portico-upgrade.sock",
        "  grace_period: 1s",
        "  graceful_shutdown_timeout: 1s",
        # Extra server settings for tuning experiments, e.g. "  client_read_buffer: 64KiB".
        *[line for line in os.environ.get("PORTICO_SERVER_EXTRA", "").split(";") if line.strip()],
        "upstreams:",
        f"  origin: {{targets: [{{address: 127.0.0.1:{UPSTREAM_PORT}}}]}}",
    ]
    if kind == "plain":
        lines += ["routes:", "  - {name: all, upstream: origin}"]
        return "\n".join(lines) + "\n"
    consumers = 100 if kind == "chain100" else 1
    import hashlib

    lines.append("consumers:")
    for i in range(consumers):
        digest = hashlib.sha256(f"bench-key-{i}".encode()).hexdigest()
        lines.append(f"  - {{name: consumer-{i}, credentials: {{api_keys: [{{sha256: {digest}}}]}}}}")
    chain = "[{key_auth: {}}, {rate_limit: {requests: 100000000, per: second, key: consumer}}]"
    lines.append("routes:")
    if kind == "chain100":
        for i in range(99):
            lines.append(f"  - {{name: r{i}, paths: ['/svc{i}/*'], upstream: origin, policies: {chain}}}")
    lines.append(f"  - {{name: all, upstream: origin, policies: {chain}}}")
    return "\n".join(lines) + "\n"


class Portico:
    def __init__(self, work, binary, kind, threads, cpus):
        self.conf = os.path.join(work, f"portico-{kind}.yaml")
        with open(self.conf, "w") as f:
            f.write(portico_config(work, kind, threads))
        self.log = open(os.path.join(work, f"portico-{kind}.log"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpus, binary, "run", "-c", self.conf],
            stdout=self.log,
            stderr=self.log,
            env=dict(os.environ, RUST_LOG="warn"),
        )
        wait_port(GATEWAY_PORT)

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# Shared by every checking wrk script: the per-thread counters and the RESULT line.
WRK_LUA_COMMON = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local total_bad = 0
  for _, t in ipairs(threads) do total_bad = total_bad + t:get("bad") end
  local e = summary.errors
  io.write(string.format("RESULT %d %f %f %f %d %d\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, total_bad,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""

WRK_LUA = WRK_LUA_COMMON + r"""
function init(args)
  bad = 0
  expected = os.getenv("BENCH_BODY")
  wrk.headers["x-api-key"] = os.getenv("BENCH_KEY")
end
function response(status, headers, body)
  if status ~= 200 or body ~= expected then bad = bad + 1 end
end
"""


def run_wrk(url, body, duration, conns, cpus, lua, threads=1, extra_env=None):
    """Runs wrk with a checking Lua script that prints a RESULT line."""
    env = dict(os.environ, BENCH_BODY=body, BENCH_KEY=API_KEY, **(extra_env or {}))
    out = subprocess.run(
        ["taskset", "-c", cpus, "wrk", "-t", str(threads), "-c", str(conns), "-d", f"{duration}s", "-s", lua, url],
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            n, secs, p50, p99, bad, errors = line.split()[1:]
            return {
                "requests": int(n),
                "rps": int(n) / float(secs),
                "p50": float(p50),
                "p99": float(p99),
                "bad": int(bad) + int(errors),
            }
    raise RuntimeError(f"wrk gave no result:\n{out}")


def run_oha(url, size, duration, conns, cpus, rate=0):
    """rate > 0: a fixed offered load, with latency corrected for coordinated omission."""
    paced = ["-q", str(rate), "--latency-correction"] if rate else []
    out = subprocess.run(
        ["taskset", "-c", cpus, "oha", "-z", f"{duration}s", "-c", str(conns), "--no-tui", "--output-format", "json",
         *paced, "-H", f"x-api-key: {API_KEY}", url],
        capture_output=True,
        text=True,
    ).stdout
    r = json.loads(out)
    codes = r.get("statusCodeDistribution", {})
    ok = codes.get("200", 0)
    total = sum(codes.values())
    # Requests still in flight when the run's time is up are cancelled by oha
    # ("aborted due to deadline"); they are not failures of the gateway.
    errors = sum(n for e, n in r.get("errorDistribution", {}).items() if "deadline" not in e)
    size_ok = abs(r["summary"].get("sizePerRequest", 0) - size) < 0.5 if ok else False
    lat = r.get("latencyPercentiles", {})
    return {
        "requests": total,
        "rps": r["summary"]["requestsPerSec"],
        "p50": lat.get("p50", 0) * 1000,
        "p99": lat.get("p99", 0) * 1000,
        "bad": (total - ok) + errors + (0 if size_ok else 1),
    }


def measure(gw, tool, url, body, size, args, lua):
    pids = gw.pids()
    cpu0 = proc_cpu_seconds(pids)
    t0 = time.time()
    if tool == "wrk":
        r = run_wrk(url, body, args.duration, args.connections, args.client_cpus, lua, args.client_threads)
    elif tool == "fixed":
        r = run_oha(url, size, args.duration, args.connections, args.client_cpus, rate=args.fixed_rate)
    else:
        r = run_oha(url, size, args.duration, args.connections, args.client_cpus)
    wall = time.time() - t0
    cpu = proc_cpu_seconds(gw.pids()) - cpu0
    r["cpu_us_per_req"] = cpu / max(r["requests"], 1) * 1e6
    r["cpu_util"] = cpu / wall
    r["rss_mib"] = proc_rss_kib(gw.pids()) / 1024
    return r


def start_gateway(name, work, args):
    if name == "nginx":
        return Nginx(work, "proxy", nginx_proxy_block(), args.threads, args.gateway_cpus)
    kind = {"portico": "plain", "portico-chain": "chain", "portico-chain100": "chain100"}[name]
    return Portico(work, args.binary, kind, args.threads, args.gateway_cpus)


def fixed_load(name, gw, rnd, size, args, lua, results):
    """One run at args.fixed_rate rps offered, recorded under (name, size, "fixed")."""
    url = f"http://127.0.0.1:{GATEWAY_PORT}/{size}"
    r = measure(gw, "fixed", url, body_of(SIZES[size]), SIZES[size], args, lua)
    r["offered"] = args.fixed_rate
    results.setdefault((name, size, "fixed"), []).append(r)
    print(f"round {rnd + 1} {name:18} {size:6} {args.fixed_rate} rps offered: {r['rps']:.0f} rps  "
          f"p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms  cpu {r['cpu_util'] * 100:.0f}%"
          f"{'  VOID: ' + str(r['bad']) + ' bad responses' if r['bad'] else ''}", flush=True)


def hold_idle_connections(n):
    """Opens n keepalive connections, each after one request; returns the sockets."""
    socks = []
    req = f"GET /12B HTTP/1.1\r\nHost: bench\r\nx-api-key: {API_KEY}\r\n\r\n".encode()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", GATEWAY_PORT))
        s.sendall(req)
        socks.append(s)
    for s in socks:
        s.settimeout(10)
        got = b""
        while b"\r\n\r\n" not in got or not got.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
            if len(got) > 100 and got.endswith(body_of(12).encode()):
                break
    return socks


def memory_report(name, work, args, soak=True):
    gw = start_gateway(name, work, args)
    try:
        wait_http_ok(f"http://127.0.0.1:{GATEWAY_PORT}/12B", headers={"x-api-key": API_KEY})
        idle = proc_rss_kib(gw.pids()) / 1024
        socks = hold_idle_connections(args.idle_connections)
        time.sleep(1)
        with_conns = proc_rss_kib(gw.pids()) / 1024
        for s in socks:
            s.close()
        samples = []
        if soak and args.soak > 0:
            lua = os.path.join(work, "check.lua")
            steps = max(args.soak // 60, 1)
            for _ in range(steps):
                run_wrk(f"http://127.0.0.1:{GATEWAY_PORT}/1KiB", body_of(1024), args.soak // steps, args.connections,
                        args.client_cpus, lua)
                samples.append(proc_rss_kib(gw.pids()) / 1024)
        return idle, with_conns, samples
    finally:
        gw.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/portico"))
    p.add_argument("--gateway-cpus", default=os.environ.get("GATEWAY_CPUS", "0"))
    p.add_argument("--client-cpus", default=os.environ.get("CLIENT_CPUS", "1"))
    p.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", "1")),
                   help="gateway worker threads (nginx workers)")
    p.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "3")))
    p.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", "10")), help="seconds per run")
    p.add_argument("--connections", type=int, default=int(os.environ.get("CONNECTIONS", "50")))
    p.add_argument("--client-threads", type=int, default=int(os.environ.get("CLIENT_THREADS", "1")),
                   help="wrk threads")
    p.add_argument("--upstream-workers", type=int, default=int(os.environ.get("UPSTREAM_WORKERS", "1")))
    p.add_argument("--rate", default=os.environ.get("RATE", "auto"),
                   help="offered rps for the fixed-load latency runs: a number, 0 to skip, or auto (the default): "
                        "in each round, 60%% of the lowest rate any scenario reached in it (the first size and tool)")
    p.add_argument("--sizes", default=os.environ.get("SIZES", "12B,1KiB,16KiB"))
    p.add_argument("--tools", default=os.environ.get("TOOLS", "wrk,oha"))
    p.add_argument("--scenarios", default=os.environ.get("SCENARIOS", "nginx,portico,portico-chain,portico-chain100"))
    p.add_argument("--idle-connections", type=int, default=int(os.environ.get("IDLE_CONNECTIONS", "10000")))
    p.add_argument("--soak", type=int, default=int(os.environ.get("SOAK", "600")), help="soak seconds (0: skip)")
    p.add_argument("--machine", default=os.environ.get("MACHINE", socket.gethostname()))
    args = p.parse_args()
    args.auto_rate = auto_rate = args.rate == "auto"
    args.rate = 0 if auto_rate else int(args.rate)
    args.fixed_rate = args.rate

    for tool in ["nginx", "wrk", "taskset"] + (["oha"] if "oha" in args.tools else []):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (make bench installs it)")
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} missing: build with `cargo build --release`")
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65535)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    work = tempfile.mkdtemp(prefix="portico-bench-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    lua = os.path.join(work, "check.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)
    upstream = Nginx(work, "upstream", upstream_block(work), args.upstream_workers, args.client_cpus)
    scenarios = args.scenarios.split(",")
    sizes = args.sizes.split(",")
    tools = args.tools.split(",")
    results = {}  # (scenario, size, tool) -> [run dicts]
    audits = {}  # chain scenario -> [(requests counted, log lines, dropped, probe ok)] per round
    try:
        wait_port(UPSTREAM_PORT)
        for rnd in range(args.rounds):
            for name in scenarios:
                chain = name.startswith("portico-chain")
                log_path = os.path.join(work, "access.log")
                lines_before = count_lines(log_path)
                gw = start_gateway(name, work, args)
                requests = dropped = 0.0
                probe_ok = False
                try:
                    wait_http_ok(f"http://127.0.0.1:{GATEWAY_PORT}/12B", headers={"x-api-key": API_KEY})
                    probe_ok = chain_probe() if chain else True
                    # Warm-up: connections and caches, not measured.
                    run_wrk(f"http://127.0.0.1:{GATEWAY_PORT}/12B", body_of(12), 2, args.connections,
                            args.client_cpus, lua)
                    for size in sizes:
                        for tool in tools:
                            url = f"http://127.0.0.1:{GATEWAY_PORT}/{size}"
                            r = measure(gw, tool, url, body_of(SIZES[size]), SIZES[size], args, lua)
                            results.setdefault((name, size, tool), []).append(r)
                            print(f"round {rnd + 1} {name:18} {size:6} {tool:4} {r['rps']:10.0f} rps  "
                                  f"p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms  cpu {r['cpu_util'] * 100:.0f}%"
                                  f"{'  VOID: ' + str(r['bad']) + ' bad responses' if r['bad'] else ''}",
                                  flush=True)
                    if args.rate > 0:
                        # Latency at the same offered load for every gateway, below all their capacities.
                        fixed_load(name, gw, rnd, sizes[0], args, lua, results)
                    if chain:
                        requests = metric_sum("portico_requests_total")
                        dropped = metric_sum("portico_access_log_dropped_total")
                finally:
                    gw.stop()
                if chain:
                    # The gateway has stopped, so its log writer has flushed every line.
                    lines = count_lines(log_path) - lines_before
                    audits.setdefault(name, []).append((requests, lines, dropped, probe_ok))
                    print(f"round {rnd + 1} {name:18} audit: {requests:.0f} requests counted, {lines} log lines, "
                          f"{dropped:.0f} dropped, auth and rate limit {'on' if probe_ok else 'NOT SEEN'}", flush=True)
            if auto_rate:
                # Every gateway is offered the same load: 60% of the slowest one's rate this round.
                first = (sizes[0], tools[0])
                slowest = min(results[(name, *first)][-1]["rps"] for name in scenarios)
                args.fixed_rate = max(int(slowest * 0.6) // 500 * 500, 500)
                for name in scenarios:
                    gw = start_gateway(name, work, args)
                    try:
                        wait_http_ok(f"http://127.0.0.1:{GATEWAY_PORT}/12B", headers={"x-api-key": API_KEY})
                        run_wrk(f"http://127.0.0.1:{GATEWAY_PORT}/12B", body_of(12), 2, args.connections,
                                args.client_cpus, lua)
                        fixed_load(name, gw, rnd, sizes[0], args, lua, results)
                    finally:
                        gw.stop()
        memory = {}
        if args.idle_connections > 0 or args.soak > 0:
            # The soak runs on Portico only: it is the process whose growth is in question.
            for name in ("nginx", "portico-chain"):
                if name in scenarios:
                    memory[name] = memory_report(name, work, args, soak=name != "nginx")
    finally:
        upstream.stop()

    table = render(results, memory, scenarios, sizes, tools, args, audits)
    print(table)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    path = os.path.join(HERE, "results", f"{stamp}.md")
    with open(path, "w") as f:
        f.write(table)
    print(f"written to {os.path.relpath(path, ROOT)}")
    shutil.rmtree(work, ignore_errors=True)


def baseline_check(results, sizes, tools):
    """Lines warning of nginx runs that got well under the core share of the
    best nginx run with the same body and tool: something else held the
    client core, so those runs understate nginx and the ratios overstate
    Portico."""
    weak = []
    for size in sizes:
        for tool in tools:
            runs = results.get(("nginx", size, tool), [])
            best = max((r["cpu_util"] for r in runs), default=0)
            weak += [f"{size} {tool} round {i + 1}: {r['cpu_util'] * 100:.0f}% of the core against {best * 100:.0f}%"
                     for i, r in enumerate(runs) if r["cpu_util"] < 0.85 * best]
    if not weak:
        return ["", "Baseline check: every nginx run used within 15% of its best run's share of the core."]
    return ["", f"**Baseline check failed** in {len(weak)} nginx runs ({'; '.join(weak)}). The client core was busy "
            "with something else, so those runs understate nginx and the ratios above overstate Portico. "
            "Rerun on a quiet machine."]


def render(results, memory, scenarios, sizes, tools, args, audits=None):
    out = [
        f"# Portico vs nginx, {datetime.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {args.machine}, {os.cpu_count()} CPUs. Gateway on CPUs {args.gateway_cpus} "
        f"({args.threads} worker{'s' if args.threads > 1 else ''}); upstream nginx and load generator on CPUs "
        f"{args.client_cpus}. {args.connections} keepalive connections, {args.duration}s per run, "
        f"{args.rounds} alternating rounds; medians. CPU/req is the gateway process's CPU time per request; "
        f"CPU% is its share of one core over the run (under 100%: the client core was the limit).",
        "",
        "| body | tool | scenario | rps | p50 ms | p99 ms | CPU/req µs | CPU% | RSS MiB | rps vs nginx |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        for tool in tools:
            base = None
            for name in scenarios:
                runs = results.get((name, size, tool), [])
                if not runs:
                    continue
                void = sum(r["bad"] for r in runs)
                rps = statistics.median(r["rps"] for r in runs)
                if name == "nginx":
                    base = rps
                ratio = f"{rps / base:.2f}x" if base else "-"
                cells = [
                    size, tool, name,
                    f"{rps:,.0f}" if not void else f"VOID ({void} bad)",
                    f"{statistics.median(r['p50'] for r in runs):.3f}",
                    f"{statistics.median(r['p99'] for r in runs):.3f}",
                    f"{statistics.median(r['cpu_us_per_req'] for r in runs):.1f}",
                    f"{statistics.median(r['cpu_util'] for r in runs) * 100:.0f}",
                    f"{max(r['rss_mib'] for r in runs):.1f}",
                    ratio,
                ]
                out.append("| " + " | ".join(cells) + " |")
    out += baseline_check(results, sizes, tools)
    fixed = [(name, results[(name, sizes[0], "fixed")]) for name in scenarios if (name, sizes[0], "fixed") in results]
    if fixed:
        offered = sorted({r["offered"] for _, runs in fixed for r in runs})
        load = (f"{offered[0]:,} rps" if len(offered) == 1
                else f"{', '.join(f'{o:,}' for o in offered)} rps (one per round)")
        how = ("60% of the rate the slowest scenario reached in the same round, so every gateway runs well below "
               "its capacity" if args.auto_rate else "a load every gateway here can carry")
        out += ["", f"## Latency at a fixed load of {load}", "",
                f"oha offers the same load to each gateway: {how}; {sizes[0]} bodies over {args.connections} "
                "connections, latencies corrected for coordinated omission. Medians of the rounds.",
                "", "| scenario | rps served | p50 ms | p99 ms | CPU% | p99 minus nginx's | p99 / nginx's |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        base = None
        for name, runs in fixed:
            void = sum(r["bad"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
            if name == "nginx":
                base = p99
            cells = [
                name,
                f"{statistics.median(r['rps'] for r in runs):,.0f}" if not void else f"VOID ({void} bad)",
                f"{statistics.median(r['p50'] for r in runs):.3f}",
                f"{p99:.3f}",
                f"{statistics.median(r['cpu_util'] for r in runs) * 100:.0f}",
                f"{p99 - base:+.3f} ms" if base is not None else "-",
                f"{p99 / base:.2f}x" if base else "-",
            ]
            out.append("| " + " | ".join(cells) + " |")
    if audits:
        out += ["", "## Every request authenticated, counted and logged", "",
                "For each chain run: a request without a key got 401 and one with a key carried RateLimit headers; "
                "the requests the gateway counted in `portico_requests_total` against the lines its access log "
                "gained by the time it stopped, and the lines dropped (`portico_access_log_dropped_total`).", "",
                "| scenario | rounds | requests counted | access-log lines | dropped | auth and rate limit | verdict |",
                "|---|---:|---:|---:|---:|---|---|"]
        for name, runs in audits.items():
            counted = sum(r[0] for r in runs)
            lines = sum(r[1] for r in runs)
            dropped = sum(r[2] for r in runs)
            probes = all(r[3] for r in runs)
            every = all(r[0] == r[1] for r in runs) and dropped == 0 and probes
            out.append(f"| {name} | {len(runs)} | {counted:,.0f} | {lines:,} | {dropped:,.0f} | "
                       f"{'on in every round' if probes else 'NOT SEEN'} | {'every request' if every else 'MISMATCH'} |")
    if memory:
        out += ["", "## Memory", "", f"| gateway | idle RSS MiB | with {args.idle_connections} idle keepalive connections "
                f"| soak RSS MiB (each minute of {args.soak}s at steady load) |", "|---|---:|---:|---|"]
        for name, (idle, conns, soak) in memory.items():
            out.append(f"| {name} | {idle:.1f} | {conns:.1f} | {', '.join(f'{x:.1f}' for x in soak) or '-'} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
