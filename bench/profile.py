#!/usr/bin/env python3
"""Where a gateway's CPU goes: perf profiles of Portico and bare Pingora (or
any build) under the benchmark's load, side by side.

    python3 bench/profile.py pingora=bench/floor/target/release/pingora \\
        portico=target/release/portico --kind plain --size 12B

Each variant runs as in bench/ab.py (pinned to GATEWAY_CPUS, the upstream
nginx and wrk on CLIENT_CPUS, every response checked) while `perf record`
samples the gateway process for DURATION seconds. For each variant it prints
the CPU time per request, the share of the samples in the kernel, and the
symbols above --min percent with their cost in nanoseconds per request, so
two builds can be compared symbol by symbol. `--call-graph dwarf` adds
inclusive figures (slower, bigger files). The perf data is kept in --out.
Needs `perf` (Debian's linux-perf). bench/TUNING.md records what it found.

`--callgrind N` counts instructions instead (valgrind's callgrind): each
variant serves N requests after a warm-up with collection switched on only
for them, and the table gives instructions per request by function, the
variant's total first. Counts repeat to about 0.1% from run to run whatever else
the machine does, so a change of a few hundred instructions per request shows,
where perf's rates on this VM move by 10%. Needs valgrind and oha.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ab  # noqa: E402  (NAME=BINARY variants)
import bench  # noqa: E402  (upstream, pinning, wrk, CPU accounting)


def profile(name, binary, args, work, lua, body, url):
    """Runs one variant under perf; returns (cpu µs/req, kernel share, [(pct, symbol)])."""
    gw = bench.Portico(work, binary, args.kind, args.threads, args.gateway_cpus)
    data = os.path.join(args.out, f"{name}-{args.kind}-{args.size}.data")
    try:
        bench.wait_http_ok(url, headers={"x-api-key": bench.API_KEY})
        bench.run_wrk(url, body, 2, args.connections, args.client_cpus, lua)
        cmd = ["perf", "record", "-q", "-F", str(args.frequency), "-o", data, "-p", str(gw.proc.pid)]
        if args.call_graph:
            cmd += ["--call-graph", args.call_graph]
        rec = subprocess.Popen(cmd + ["--", "sleep", str(args.duration)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = bench.measure(gw, "wrk", url, body, len(body), args, lua)
        rec.wait()
    finally:
        gw.stop()
    if r["bad"]:
        sys.exit(f"{name}: {r['bad']} bad responses; the profile would not be of a working proxy")
    report = ["perf", "report", "-i", data, "--stdio", "--percent-limit", str(args.min), "--sort", "sym"]
    if args.call_graph:
        report += ["--children", "-g", "none"]
    else:
        report += ["--no-children"]
    out = subprocess.run(report, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(?:([\d.]+)%\s+)?\[([k.])\]\s+(.*)", line)
        if m:
            rows.append((float(m.group(1)), m.group(3) == "k", m.group(4).strip()))
    kernel = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso"],
                            capture_output=True, text=True).stdout
    kshare = sum(float(m.group(1)) for m in re.finditer(r"([\d.]+)%\s+\[kernel", kernel))
    return r, kshare, rows


def callgrind(name, binary, args, work, url):
    """Runs one variant under callgrind for args.callgrind requests; returns
    (instructions per request, [(instructions per request, function)])."""
    conf = os.path.join(work, f"callgrind-{args.kind}.yaml")
    with open(conf, "w") as f:
        f.write(bench.portico_config(work, args.kind, args.threads))
    out = os.path.join(args.out, f"{name}-{args.kind}-{args.size}.callgrind")
    log = open(os.path.join(work, f"{name}-callgrind.log"), "w")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                             binary, "run", "-c", conf], stdout=log, stderr=log)
    try:
        bench.wait_http_ok(url, timeout=120, headers={"x-api-key": bench.API_KEY})
        load = ["oha", "-c", "10", "--no-tui", "-H", f"x-api-key: {bench.API_KEY}", url]
        subprocess.run(load[:1] + ["-n", "500"] + load[1:], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
        done = subprocess.run(load[:1] + ["-n", str(args.callgrind), "--output-format", "json"] + load[1:],
                              check=True, capture_output=True, text=True).stdout
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.send_signal(signal.SIGINT if name == "pingora" else signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    codes = json.loads(done).get("statusCodeDistribution", {})
    if codes.get("200", 0) != args.callgrind:
        sys.exit(f"{name}: not every request answered 200: {codes}")
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=99.9", out],
                          capture_output=True, text=True).stdout
    total, rows = 0, []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in m.group(2):
            total = n
        else:
            rows.append((n / args.callgrind, re.sub(r" \[[^]]*\]$", "", m.group(2)).split(":", 1)[-1]))
    return total / args.callgrind, rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+", type=ab.parse_variant, metavar="NAME=BINARY")
    p.add_argument("--kind", choices=["plain", "chain", "chain100"], default=os.environ.get("KIND", "plain"))
    p.add_argument("--size", choices=list(bench.SIZES), default=os.environ.get("SIZE", "12B"))
    p.add_argument("--gateway-cpus", default=os.environ.get("GATEWAY_CPUS", "0"))
    p.add_argument("--client-cpus", default=os.environ.get("CLIENT_CPUS", "1"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", "8")))
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--client-threads", type=int, default=1)
    p.add_argument("--frequency", type=int, default=2999, help="samples per second")
    p.add_argument("--call-graph", choices=["dwarf", "fp"], default=None)
    p.add_argument("--min", type=float, default=0.7, help="symbols under this percent are left out")
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "portico-profile"))
    p.add_argument("--callgrind", type=int, default=0, metavar="N",
                   help="count instructions over N requests under valgrind instead of sampling with perf")
    args = p.parse_args()
    for tool in ("nginx", "wrk", "taskset") + (("valgrind", "oha") if args.callgrind else ("perf",)):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (make bench-deps; perf is Debian's linux-perf)")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="portico-profile-")
    os.chmod(work, 0o755)
    lua = os.path.join(work, "check.lua")
    with open(lua, "w") as f:
        f.write(bench.WRK_LUA)
    body = bench.body_of(bench.SIZES[args.size])
    url = f"http://127.0.0.1:{bench.GATEWAY_PORT}/{args.size}"
    upstream = bench.Nginx(work, "upstream", bench.upstream_block(work), 1, args.client_cpus)
    try:
        bench.wait_port(bench.UPSTREAM_PORT)
        for name, binary, _ in args.variants:
            if args.callgrind:
                per_req, rows = callgrind(name, binary, args, work, url)
                print(f"\n## {name}: {per_req:,.0f} instructions per request ({args.callgrind} requests)\n")
                print("| instructions/req | function |\n|---:|---|")
                for n, fn in rows:
                    if n >= per_req * args.min / 100:
                        print(f"| {n:,.0f} | `{fn[:110]}` |")
                continue
            r, kshare, rows = profile(name, binary, args, work, lua, body, url)
            us = r["cpu_us_per_req"]
            print(f"\n## {name}: {r['rps']:,.0f} rps, {us:.1f} µs CPU/request, kernel {kshare:.0f}% "
                  f"({us * kshare / 100:.1f} µs), user {us * (100 - kshare) / 100:.1f} µs\n")
            print("| % | ns/req | where | symbol |\n|---:|---:|---|---|")
            for pct, k, sym in rows:
                print(f"| {pct:.2f} | {us * pct * 10:.0f} | {'kernel' if k else 'user'} | `{sym[:110]}` |")
    finally:
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
