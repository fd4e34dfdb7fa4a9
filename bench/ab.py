#!/usr/bin/env python3
"""A/B runs of Portico builds and settings, side by side with nginx.

    python3 bench/ab.py before=path/to/old/portico after=target/release/portico \\
        after-steal=target/release/portico@steal

Each variant is NAME=BINARY, with `@steal` for `work_stealing: true`. The
variants and nginx run in alternation for --rounds rounds against the same
upstream, pinned as in bench.py (gateway on GATEWAY_CPUS, upstream and wrk on
CLIENT_CPUS); every response is checked as there. Prints a Markdown table of
medians with each variant's ratio to nginx. For tuning experiments; the
benchmark of record is bench.py.

With RATE (or --rate) each round also offers that many rps with oha and
reports latency at that fixed load.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the nginx/portico helpers of the main benchmark)


def parse_variant(spec):
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected NAME=BINARY[@steal]")
    binary, _, mode = rest.partition("@")
    if mode not in ("", "steal"):
        raise argparse.ArgumentTypeError(f"{spec!r}: the only mode is @steal")
    if not os.access(binary, os.X_OK):
        raise argparse.ArgumentTypeError(f"{binary}: not an executable")
    return name, os.path.abspath(binary), mode == "steal"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+", type=parse_variant, metavar="NAME=BINARY[@steal]")
    p.add_argument("--kind", choices=["plain", "chain", "chain100"], default=os.environ.get("KIND", "plain"))
    p.add_argument("--size", choices=list(bench.SIZES), default=os.environ.get("SIZE", "12B"))
    p.add_argument("--gateway-cpus", default=os.environ.get("GATEWAY_CPUS", "0"))
    p.add_argument("--client-cpus", default=os.environ.get("CLIENT_CPUS", "1"))
    p.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", "1")))
    p.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "3")))
    p.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", "6")))
    p.add_argument("--connections", type=int, default=int(os.environ.get("CONNECTIONS", "50")))
    p.add_argument("--client-threads", type=int, default=int(os.environ.get("CLIENT_THREADS", "1")))
    p.add_argument("--upstream-workers", type=int, default=int(os.environ.get("UPSTREAM_WORKERS", "1")))
    p.add_argument("--ref", default=os.environ.get("REF", ""),
                   help="also give each variant's rate as a ratio to this variant's in the same round "
                        "(median over rounds): pairing rounds cancels this VM's drift from minute to minute")
    p.add_argument("--rate", type=int, default=int(os.environ.get("RATE", "0")),
                   help="also offer this many rps with oha in each round, for latency at a fixed load (0: off)")
    args = p.parse_args()
    args.fixed_rate = args.rate  # bench.measure's offered load
    for tool in ("nginx", "wrk", "taskset") + (("oha",) if args.rate else ()):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (make bench installs it)")

    work = tempfile.mkdtemp(prefix="portico-ab-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    lua = os.path.join(work, "check.lua")
    with open(lua, "w") as f:
        f.write(bench.WRK_LUA)
    body = bench.body_of(bench.SIZES[args.size])
    url = f"http://127.0.0.1:{bench.GATEWAY_PORT}/{args.size}"
    names = ["nginx"] + [v[0] for v in args.variants]
    runs = {name: [] for name in names}
    fixed = {name: [] for name in names}
    upstream = bench.Nginx(work, "upstream", bench.upstream_block(work), args.upstream_workers, args.client_cpus)
    try:
        bench.wait_port(bench.UPSTREAM_PORT)
        for rnd in range(args.rounds):
            for name, binary, steal in [("nginx", None, False)] + args.variants:
                if binary is None:
                    gw = bench.Nginx(work, "proxy", bench.nginx_proxy_block(), args.threads, args.gateway_cpus)
                else:
                    os.environ["WORK_STEALING"] = "true" if steal else "false"
                    gw = bench.Portico(work, binary, args.kind, args.threads, args.gateway_cpus)
                try:
                    bench.wait_http_ok(url, headers={"x-api-key": bench.API_KEY})
                    bench.run_wrk(url, body, 2, args.connections, args.client_cpus, lua, args.client_threads)
                    r = bench.measure(gw, "wrk", url, body, len(body), args, lua)
                    if args.rate:
                        f = bench.measure(gw, "fixed", url, body, len(body), args, lua)
                        fixed[name].append(f)
                        report(rnd, name, f, f"{args.rate} rps offered: {f['rps']:.0f} rps  p50 {f['p50']:.3f} ms  "
                                             f"p99 {f['p99']:.3f} ms")
                finally:
                    gw.stop()
                runs[name].append(r)
                report(rnd, name, r, f"{r['rps']:10.0f} rps  p99 {r['p99']:.3f} ms  "
                                     f"cpu/req {r['cpu_us_per_req']:.1f} us")
    finally:
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(r["rps"] for r in runs["nginx"])
    print(f"\n{args.kind}, {args.size}, {args.threads} thread(s) on CPUs {args.gateway_cpus}, "
          f"{args.connections} connections, {args.rounds} alternating rounds of {args.duration}s; medians.\n")
    columns = ["rps", "p99 ms", "CPU/req µs", "CPU%", "rps vs nginx"]
    paired = {}
    if args.ref in runs:
        columns.append(f"vs {args.ref}, paired by round (min–max)")
        for name in names:
            ratios = sorted(r["rps"] / ref["rps"] for r, ref in zip(runs[name], runs[args.ref]))
            paired[name] = f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}–{ratios[-1]:.2f})"
    print_table(names, runs, columns,
                lambda med, name: [f"{med('rps'):,.0f}", f"{med('p99'):.3f}", f"{med('cpu_us_per_req'):.1f}",
                             f"{med('cpu_util') * 100:.0f}", f"{med('rps') / base:.2f}x"]
                + ([paired[name]] if paired else []))
    if args.rate:
        print(f"\nLatency at a fixed {args.rate:,} rps (oha, latency corrected for coordinated omission); medians.\n")
        print_table(names, fixed, ["p50 ms", "p99 ms", "CPU%"],
                    lambda med, name: [f"{med('p50'):.3f}", f"{med('p99'):.3f}", f"{med('cpu_util') * 100:.0f}"])


def report(rnd, name, r, what):
    """One run's line: `what` it measured, then the gateway's CPU share and
    whether bad responses voided it."""
    void = f"  VOID: {r['bad']} bad responses" if r["bad"] else ""
    print(f"round {rnd + 1} {name:14} {what}  cpu {r['cpu_util'] * 100:.0f}%{void}", flush=True)


def print_table(names, runs, columns, cells):
    """A Markdown table with one row per variant: cells(med, name) gives its
    columns from med(key), the median of that key over its runs."""
    print("| variant | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name in names:
        rs = runs[name]
        med = lambda key: statistics.median(r[key] for r in rs)  # noqa: E731
        void = " (VOID)" if any(r["bad"] for r in rs) else ""
        print(f"| {name}{void} | " + " | ".join(cells(med, name)) + " |")

if __name__ == "__main__":
    main()
