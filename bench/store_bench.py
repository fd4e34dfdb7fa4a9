#!/usr/bin/env python3
"""Management plane at scale: store mode with N routes, N applications and
N subscriptions (default 10,000 each), on SQLite.

Measures, and prints as a Markdown table (also written to
bench/results/<date>-store.md):

1. **Compile:** `portico check` of the whole config as one file: wall time
   and peak RSS (`/usr/bin/time`), beside the same for a one-route config
   (the process's own start-up), so the difference is the config's.
2. **Start:** a store-mode process from `portico import`ed SQLite to its
   first served request.
3. **Write to serve:** WRITES admin writes (`PUT /admin/v1/routes/NAME`,
   each a new route): how long the write takes (it is compiled with the
   whole store and swapped in before it returns) and how long after it
   returns the new route is served (the first request's answer); p50, p99.
4. **Throughput while writing:** wrk on a route of the big config, ROUNDS
   rounds alternating "no writes" and "one admin write per second", the
   medians and their ratio. The gateway is pinned to GATEWAY_CPUS, wrk to
   CLIENT_CPUS; the admin writes run on the gateway's CPUs too (they share
   the process), which is what a production node sees.

Every wrk response is checked (status 200 and body); a round with wrong
answers is VOID.
"""

import argparse
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (wait_port, run_wrk, WRK_LUA_COMMON)

PORT = 19680
ADMIN = 19681
BODY = "ok"


def big_config(n, services):
    """N routes in `services` services (manual approval, key_auth), N
    applications of 10 teams with one API key each, N approved subscriptions."""
    lines = ["services:"]
    for s in range(services):
        lines.append(f"  - {{name: svc{s}, team: team{s % 10}, subscription: manual}}")
    lines.append("routes:")
    lines.append(f"  - {{name: bench, paths: [/bench], response: {{status: 200, body: {BODY}}}}}")
    for i in range(n):
        lines.append(
            f"  - {{name: r{i}, service: svc{i % services}, paths: [/r{i}], "
            f"response: {{status: 200, body: {BODY}}}, policies: [{{key_auth: {{}}}}]}}"
        )
    lines.append("consumers:")
    for i in range(n):
        digest = hashlib.sha256(f"key-{i}".encode()).hexdigest()
        lines.append(
            f"  - {{name: app{i}, team: team{i % 10}, credentials: {{api_keys: [{{id: k, sha256: {digest}}}]}}}}"
        )
    lines.append("subscriptions:")
    for i in range(n):
        lines.append(f"  - {{application: app{i}, service: svc{i % services}, status: approved}}")
    return "\n".join(lines) + "\n"


def server_section(work, store):
    return (
        "server:\n  listeners:\n    - address: 127.0.0.1:%d\n  admin: 127.0.0.1:%d\n  threads: 1\n"
        "  access_log: {path: off}\n  pid_file: %s/portico.pid\n  upgrade_sock: %s/upgrade.sock\n%s"
        % (PORT, ADMIN, work, work, f"  store: '{store}'\n  state_dir: {work}/state\n" if store else "")
    )


def timed_check(binary, path):
    """(seconds, peak RSS MiB) of `portico check`."""
    out = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %e %M", binary, "check", "-c", path], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    line = [l for l in out.stderr.splitlines() if l.startswith("TIME ")][-1]
    secs, kib = line.split()[1:]
    return float(secs), int(kib) / 1024


def request(method, path, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{ADMIN}/admin/v1{path}", data=data, method=method)
    req.add_header("authorization", f"Bearer {token}")
    if data:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status


def served(path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=10) as r:
            return r.status == 200
    except Exception:
        return False


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/portico"))
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--writes", type=int, default=50)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    gw_cpus = os.environ.get("GATEWAY_CPUS", "0")
    client_cpus = os.environ.get("CLIENT_CPUS", "1")
    work = tempfile.mkdtemp(prefix="portico-store-bench-")
    big = os.path.join(work, "big.yaml")
    small = os.path.join(work, "small.yaml")
    with open(big, "w") as f:
        f.write(server_section(work, None) + big_config(args.n, args.services))
    with open(small, "w") as f:
        f.write(server_section(work, None) + big_config(1, 1))
    rows = []
    base_s, base_mib = timed_check(args.binary, small)
    big_s, big_mib = timed_check(args.binary, big)
    rows.append(("compile: one route (process start-up)", f"{base_s:.2f} s", f"{base_mib:.0f} MiB peak RSS"))
    rows.append(
        (f"compile: {args.n} routes, applications, subscriptions", f"{big_s:.2f} s", f"{big_mib:.0f} MiB peak RSS")
    )
    store = f"sqlite://{work}/store.db"
    subprocess.run([args.binary, "import", big, "--store", store], check=True, capture_output=True)
    conf = os.path.join(work, "store-mode.yaml")
    with open(conf, "w") as f:
        f.write(server_section(work, store))
    env = dict(os.environ, PORTICO_ADMIN_TOKEN="bench-token", RUST_LOG="warn")
    t0 = time.monotonic()
    log = open(os.path.join(work, "portico.log"), "w")
    proc = subprocess.Popen(
        ["taskset", "-c", gw_cpus, args.binary, "run", "-c", conf], stdout=log, stderr=log, env=env
    )
    try:
        while not served("/bench"):
            if proc.poll() is not None or time.monotonic() - t0 > 300:
                raise RuntimeError(open(os.path.join(work, "portico.log")).read()[-3000:])
            time.sleep(0.02)
        start_s = time.monotonic() - t0
        rss = bench.proc_rss_kib([proc.pid]) / 1024
        rows.append(("store mode: start to first request", f"{start_s:.2f} s", f"{rss:.0f} MiB RSS serving"))
        write_ms, serve_ms = [], []
        for i in range(args.writes):
            body = {"paths": [f"/new{i}"], "response": {"status": 200, "body": BODY}}
            t = time.monotonic()
            request("PUT", f"/routes/new{i}", "bench-token", body)
            done = time.monotonic()
            ok = served(f"/new{i}")
            served_at = time.monotonic()
            if not ok:
                raise RuntimeError(f"/new{i} not served right after its write returned")
            write_ms.append((done - t) * 1000)
            serve_ms.append((served_at - done) * 1000)
        rows.append(
            (
                f"admin write (PUT a route), {args.writes} writes",
                f"p50 {pct(write_ms, 50):.0f} ms, p99 {pct(write_ms, 99):.0f} ms",
                "compiled with the whole store, swapped in before it returns",
            )
        )
        rows.append(
            (
                "write returned -> new route served",
                f"p50 {pct(serve_ms, 50):.1f} ms, p99 {pct(serve_ms, 99):.1f} ms",
                "first request after the write (never a miss)",
            )
        )
        lua = os.path.join(work, "check.lua")
        with open(lua, "w") as f:
            f.write(bench.WRK_LUA_COMMON + r"""
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or body ~= "ok" then bad = bad + 1 end
end
""")
        url = f"http://127.0.0.1:{PORT}/bench"
        quiet, busy = [], []
        for r in range(args.rounds):
            for writing in (False, True):
                stop = threading.Event()
                count = [0]

                def writer():
                    k = 0
                    while not stop.wait(1.0):
                        request("PUT", f"/routes/w{r}-{k}", "bench-token",
                                {"paths": [f"/w{r}-{k}"], "response": {"status": 200, "body": BODY}})
                        k += 1
                        count[0] = k

                th = threading.Thread(target=writer) if writing else None
                if th:
                    th.start()
                res = bench.run_wrk(url, BODY, args.duration, 50, client_cpus, lua)
                stop.set()
                if th:
                    th.join()
                if res["bad"]:
                    res["rps"] = float("nan")
                (busy if writing else quiet).append((res["rps"], res["p99"], count[0]))
        q = statistics.median(x[0] for x in quiet)
        b = statistics.median(x[0] for x in busy)
        writes = sum(x[2] for x in busy)
        rows.append(("proxy rps, no writes (median)", f"{q:,.0f} rps", f"p99 {statistics.median(x[1] for x in quiet):.2f} ms"))
        rows.append(
            (
                "proxy rps, one admin write per second (median)",
                f"{b:,.0f} rps ({b / q:.2f}x)",
                f"p99 {statistics.median(x[1] for x in busy):.2f} ms; {writes} writes in all",
            )
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    when = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    text = [
        f"# Store mode at scale ({when})",
        "",
        f"{args.n} routes in {args.services} services, {args.n} applications, {args.n} subscriptions; "
        f"SQLite; gateway on CPUs {gw_cpus} (1 thread), wrk on {client_cpus}; `{' '.join(sys.argv[1:])}`.",
        "",
        "| what | measured | note |",
        "|---|---|---|",
    ] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    out = "\n".join(text) + "\n"
    print(out)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"{when}-store.md"), "w") as f:
        f.write(out)


if __name__ == "__main__":
    main()
