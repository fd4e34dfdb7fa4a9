#!/usr/bin/env python3
"""Portico beside its peers: nginx, HAProxy, Caddy, pingap and bare Pingora,
as plain proxies and doing the chain's work. See bench/README.md, "Peers".

Every gateway proxies to the same upstream (bench.py's nginx with fixed
bodies), pinned as in bench.py: the gateway to GATEWAY_CPUS, the upstream and
wrk to CLIENT_CPUS. The gateways run in alternation (all of them, then all of
them again) for ROUNDS rounds; each gets a warm-up, then one wrk run of
DURATION seconds per body size, with every response's status and body
checked. Before a chain gateway is measured, a request without the key must
be refused (401 or 403) and one with it answered. The table gives medians
over the rounds: rps, the gateway process's CPU time per request, and the
ratios to nginx plain, nginx chain and bare Pingora in the same round.

The configs are the templates in bench/peers/ (Portico's are bench.py's).
A gateway that is not installed is listed as skipped, with how to install
it; one that fails to start, to enforce its key or to answer correctly is
listed as failed, with why.

    python3 bench/peers.py            # the full table, written to bench/results/
    python3 bench/peers.py --quick    # make bench-quick: one round, 5 s, 12 B

Standard library only, like bench.py.
"""

import argparse
import datetime
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (upstream, pinning, wrk, checks and CPU accounting of the main benchmark)

HERE = bench.HERE
ROOT = bench.ROOT
PEERS_DIR = os.path.join(HERE, "peers")
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
PINGAP_VERSION = "0.13.1"
INSTALL = {
    "haproxy": "apt-get install haproxy (make bench-peers)",
    "caddy": "apt-get install caddy (make bench-peers)",
    "pingap": f"cargo install pingap --version {PINGAP_VERSION} --locked --root bench/peers/.pingap "
              "(needs protobuf-compiler; make bench-peers)",
    "pingora": "cd bench/floor && cargo build --release (make bench-peers)",
    "portico": "cargo build --release (make build)",
}
# (kind, gateway) in the order each round runs them.
PLAIN = ["nginx", "haproxy", "caddy", "pingap", "pingora", "portico"]
CHAIN = ["nginx", "haproxy", "pingap", "portico"]
QUICK_PLAIN = ["nginx", "pingora", "portico"]
QUICK_CHAIN = ["nginx", "portico"]


def find_binary(name, args):
    """The path of a peer's binary, or None when it is not installed."""
    if name == "nginx":
        return shutil.which("nginx")
    if name in ("haproxy", "caddy"):
        return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)
    if name == "pingap":
        paths = [os.environ.get("PINGAP_BIN", ""), os.path.join(PEERS_DIR, ".pingap/bin/pingap"), shutil.which("pingap") or ""]
    elif name == "pingora":
        paths = [os.environ.get("FLOOR_BIN", ""), os.path.join(HERE, "floor/target/release/pingora"),
                 os.path.join(TARGET, "release/pingora")]
    else:
        paths = [args.binary]
    return next((p for p in paths if p and os.access(p, os.X_OK)), None)


def fill(template, work, values):
    """bench/peers/<template> with its @NAME@ placeholders filled, written to work/."""
    with open(os.path.join(PEERS_DIR, template)) as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    left = re.search(r"@[A-Z_]+@", "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("#")))
    if left:
        raise RuntimeError(f"{template}: {left.group(0)} left unfilled")
    path = os.path.join(work, template)
    with open(path, "w") as f:
        f.write(text)
    return path


class Process:
    """A gateway run in the foreground under taskset; its output goes to `out`
    (its standard output to `stdout` when given)."""

    def __init__(self, cmd, cpus, out, env=None, stop_signal=signal.SIGTERM, stdout=None):
        self.out = open(out, "ab")
        self.stdout = open(stdout, "ab") if stdout else None
        self.stop_signal = stop_signal
        self.proc = subprocess.Popen(["taskset", "-c", cpus, *cmd], stdout=self.stdout or self.out, stderr=self.out,
                                     env=dict(os.environ, **(env or {})), cwd=os.path.dirname(out))

    def pids(self):
        return [self.proc.pid] + bench.children(self.proc.pid)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        if self.stdout:
            self.stdout.close()


class NginxPeer:
    """nginx from a full config template (bench.Nginx wraps an http block)."""

    def __init__(self, conf, cpus):
        self.dir = os.path.dirname(conf)
        self.conf = conf
        subprocess.run(["taskset", "-c", cpus, "nginx", "-p", self.dir, "-c", conf], check=True,
                       capture_output=True)
        with open(os.path.join(self.dir, "nginx.pid")) as f:
            self.master = int(f.read().strip())

    def pids(self):
        return [self.master] + bench.children(self.master)

    def alive(self):
        return os.path.exists(f"/proc/{self.master}")

    def stop(self):
        subprocess.call(["nginx", "-p", self.dir, "-c", self.conf, "-s", "stop"], stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline and self.alive():
            time.sleep(0.05)


class PorticoPeer(bench.Portico):
    """bench.Portico, stopped again when it does not come up."""

    def __init__(self, *a):
        try:
            super().__init__(*a)
        except RuntimeError:
            self.stop()
            raise


def start(name, kind, work, binary, args):
    """Starts one gateway; returns (process, access-log path or None, its output file)."""
    d = os.path.join(work, f"{name}-{kind}")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)  # nginx workers run as an unprivileged user
    log = os.path.join(d, "access.log") if kind == "chain" else None
    values = {
        "WORK": d, "THREADS": args.threads, "UPSTREAM": f"127.0.0.1:{bench.UPSTREAM_PORT}",
        "LISTEN": f"127.0.0.1:{bench.GATEWAY_PORT}", "HOST": "127.0.0.1", "PORT": bench.GATEWAY_PORT,
        "METRICS_LISTEN": f"127.0.0.1:{bench.ADMIN_PORT}", "API_KEY": bench.API_KEY, "ACCESS_LOG": log or "",
    }
    out = os.path.join(d, "output.log")
    cpus = args.gateway_cpus
    if name == "nginx":
        gw = NginxPeer(fill(f"nginx-{kind}.conf", d, values), cpus)
    elif name == "haproxy":
        # HAProxy logs to stdout (`log stdout`), so the chain's access log is its output.
        gw = Process([binary, "-db", "-f", fill(f"haproxy-{kind}.cfg", d, values)], cpus, out, stdout=log)
    elif name == "caddy":
        conf = fill(f"caddy-{kind}.Caddyfile", d, values)
        env = {"GOMAXPROCS": str(args.threads), "HOME": d, "XDG_DATA_HOME": d, "XDG_CONFIG_HOME": d}
        gw = Process([binary, "run", "--adapter", "caddyfile", "--config", conf], cpus, out, env=env)
    elif name == "pingap":
        gw = Process([binary, "-c", fill(f"pingap-{kind}.toml", d, values)], cpus, out)
    elif name == "pingora":
        gw = Process([binary], cpus, out, stop_signal=signal.SIGINT)  # bare Pingora: fast shutdown
    else:
        gw = PorticoPeer(work, binary, kind, args.threads, cpus)
        log = os.path.join(work, "access.log") if kind == "chain" else None
        out = gw.log.name
    return gw, log, out


def wait_closed(port, timeout=15.0):
    """Waits until nothing listens on port, so the next gateway can bind it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                time.sleep(0.1)
        except OSError:
            return
    raise RuntimeError(f"port {port} still open {timeout}s after the gateway was stopped")


def alive(gw):
    return gw.alive() if hasattr(gw, "alive") else gw.proc.poll() is None  # bench.Portico has no alive()


def last_line(path):
    """The last line a gateway wrote to its output, for a failure's reason."""
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        return lines[-1][:200] if lines else ""
    except OSError:
        return ""


def check_answers(gw, name, kind, out):
    """(None when the gateway answers correctly and, for the chain, refuses a
    request without the key or with a wrong one; otherwise why not, the
    requests it answered)."""
    url = f"http://127.0.0.1:{bench.GATEWAY_PORT}/12B"
    deadline = time.time() + 20
    status, body = 0, b""
    while time.time() < deadline and alive(gw):
        status, _, body = bench.http_get(url, {"x-api-key": bench.API_KEY})
        if status == 200:
            break
        time.sleep(0.1)
    if not alive(gw):
        return f"exited: {last_line(out)}", 0
    if status != 200 or body != bench.body_of(12).encode():
        return f"answered {status or 'nothing'} with the key", 0
    if kind != "chain":
        return None, 1
    no_key = bench.http_get(url)[0]
    wrong_key = bench.http_get(url, {"x-api-key": "not-" + bench.API_KEY})[0]
    if no_key not in (401, 403) or wrong_key not in (401, 403):
        return f"key not enforced: {no_key} without a key, {wrong_key} with a wrong one", 3
    if name == "portico" and not bench.chain_probe():  # two more requests
        return "no RateLimit headers on an answer", 5
    return None, 5 if name == "portico" else 3


def run_gateway(name, kind, work, binary, args, lua, sizes):
    """One gateway's turn in a round: {size: result dict} or {"failed": why}."""
    try:
        gw, log, out = start(name, kind, work, binary, args)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        err = getattr(e, "stderr", b"") or b""
        return {"failed": f"did not start: {e} {err.decode(errors='replace').strip()[:200]}".strip()}
    lines0 = bench.count_lines(log) if log else 0
    answered = 0
    results = {}
    try:
        why, answered = check_answers(gw, name, kind, out)
        if why:
            return {"failed": why}
        warm = bench.run_wrk(f"http://127.0.0.1:{bench.GATEWAY_PORT}/12B", bench.body_of(12), args.warmup,
                             args.connections, args.client_cpus, lua)
        answered += warm["requests"]
        for size in sizes:
            url = f"http://127.0.0.1:{bench.GATEWAY_PORT}/{size}"
            r = bench.measure(gw, "wrk", url, bench.body_of(bench.SIZES[size]), bench.SIZES[size], args, lua)
            answered += r["requests"]
            results[size] = r
    except (OSError, RuntimeError) as e:
        return {"failed": f"{e}"[:200]}
    finally:
        gw.stop()
        try:
            wait_closed(bench.GATEWAY_PORT)
        except RuntimeError as e:
            print(f"  {name} {kind}: {e}", flush=True)
    if log:
        # Stopped, so its log is flushed. wrk counts only finished requests; a
        # request cut off at the end of a run may be logged too.
        logged = (bench.count_lines(log) - lines0) / max(answered, 1)
        for r in results.values():
            r["logged"] = logged
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/portico"))
    p.add_argument("--quick", action="store_true",
                   help="make bench-quick: one round of 5 s, 12 B, Portico against nginx and bare Pingora")
    p.add_argument("--gateway-cpus", default=os.environ.get("GATEWAY_CPUS", "0"))
    p.add_argument("--client-cpus", default=os.environ.get("CLIENT_CPUS", "1"))
    p.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", "1")),
                   help="gateway threads (nginx workers, HAProxy nbthread, Caddy GOMAXPROCS)")
    p.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "3")))
    p.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", "10")), help="seconds per run")
    p.add_argument("--warmup", type=int, default=int(os.environ.get("WARMUP", "2")), help="warm-up seconds")
    p.add_argument("--connections", type=int, default=int(os.environ.get("CONNECTIONS", "50")))
    p.add_argument("--client-threads", type=int, default=int(os.environ.get("CLIENT_THREADS", "1")))
    p.add_argument("--upstream-workers", type=int, default=int(os.environ.get("UPSTREAM_WORKERS", "1")))
    p.add_argument("--sizes", default=os.environ.get("SIZES", "12B,16KiB"))
    p.add_argument("--plain", default=os.environ.get("PLAIN", ",".join(PLAIN)), help="plain-proxy gateways")
    p.add_argument("--chain", default=os.environ.get("CHAIN", ",".join(CHAIN)), help="chain gateways")
    p.add_argument("--machine", default=os.environ.get("MACHINE", socket.gethostname()))
    args = p.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup, args.sizes = 1, 5, 1, "12B"
        args.plain, args.chain = ",".join(QUICK_PLAIN), ",".join(QUICK_CHAIN)
    for tool in ("nginx", "wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (make bench-deps installs it)")
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 65535):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65535), hard))

    sizes = args.sizes.split(",")
    lineup = [("plain", n) for n in args.plain.split(",") if n] + [("chain", n) for n in args.chain.split(",") if n]
    binaries, skipped = {}, {}
    for kind, name in lineup:
        path = find_binary(name, args)
        if path:
            binaries[name] = path
        else:
            skipped[(kind, name)] = INSTALL.get(name, name)
            print(f"{kind} {name}: skipped, not installed ({skipped[(kind, name)]})", flush=True)
    runs = [(kind, name) for kind, name in lineup if name in binaries]
    results = {}  # (kind, name, size) -> [result dict or {"failed": why}] per round

    work = tempfile.mkdtemp(prefix="portico-peers-")
    os.chmod(work, 0o755)
    lua = os.path.join(work, "check.lua")
    with open(lua, "w") as f:
        f.write(bench.WRK_LUA)
    upstream = bench.Nginx(work, "upstream", bench.upstream_block(work), args.upstream_workers, args.client_cpus)
    try:
        bench.wait_port(bench.UPSTREAM_PORT)
        for rnd in range(args.rounds):
            for kind, name in runs:
                got = run_gateway(name, kind, work, binaries[name], args, lua, sizes)
                for size in sizes:
                    r = got.get(size, {"failed": got.get("failed", "no result")})
                    results.setdefault((kind, name, size), []).append(r)
                    if "failed" in r:
                        print(f"round {rnd + 1} {kind:5} {name:8} {size:6} FAILED: {r['failed']}", flush=True)
                    else:
                        print(f"round {rnd + 1} {kind:5} {name:8} {size:6} {r['rps']:9.0f} rps  "
                              f"cpu/req {r['cpu_us_per_req']:5.1f} us  cpu {r['cpu_util'] * 100:3.0f}%"
                              f"{'  logged %.0f%%' % (r['logged'] * 100) if 'logged' in r else ''}"
                              f"{'  VOID: %d bad responses' % r['bad'] if r['bad'] else ''}", flush=True)
    finally:
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)

    table = render(results, skipped, lineup, sizes, args)
    print(table)
    if args.quick:
        print(quick_summary(results))
        return
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", f"{datetime.datetime.now():%Y-%m-%d-%H%M}-peers.md")
    with open(path, "w") as f:
        f.write(table)
    print(f"written to {os.path.relpath(path, ROOT)}")


def ratio(results, key, size, base):
    """The median over rounds of key's rps over base's rps in the same round;
    None when either failed or gave a bad response in every round."""
    pairs = [(a, b) for a, b in zip(results.get(key + (size,), []), results.get(base + (size,), []))
             if "failed" not in a and "failed" not in b and not a["bad"] and not b["bad"]]
    return statistics.median(a["rps"] / b["rps"] for a, b in pairs) if pairs else None


def render(results, skipped, lineup, sizes, args):
    out = [
        f"# Portico and its peers, {datetime.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {args.machine}, {os.cpu_count()} CPUs. Each gateway on CPUs {args.gateway_cpus} "
        f"({args.threads} thread{'s' if args.threads > 1 else ''} or worker{'s' if args.threads > 1 else ''}); "
        f"upstream nginx and wrk on CPUs {args.client_cpus}. {args.connections} keepalive connections, "
        f"{args.duration}s per run after {args.warmup}s of warm-up, {args.rounds} alternated "
        f"round{'s' if args.rounds > 1 else ''}; medians. Every response's status and body checked. "
        "CPU/req: the gateway's CPU time (all its processes and threads, from /proc) per request; CPU%: its "
        "share of one core (under 100%: the client core was the limit). Ratios: rps over the named gateway's "
        "in the same round, median over rounds. Logged: access-log lines over the requests answered "
        "(a request cut off at the end of a run may be logged as well).",
        "",
        "| body | kind | gateway | rps | CPU/req µs | CPU% | vs nginx plain | vs nginx chain | vs bare Pingora "
        "| logged |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    fmt = lambda x: f"{x:.2f}x" if x is not None else "-"  # noqa: E731
    for size in sizes:
        for kind, name in lineup:
            label = name if name != "pingora" else "bare Pingora"
            if (kind, name) in skipped:
                out.append(f"| {size} | {kind} | {label} | skipped: not installed | | | | | | |")
                continue
            runs = results.get((kind, name, size), [])
            failed = [r["failed"] for r in runs if "failed" in r]
            good = [r for r in runs if "failed" not in r]
            void = sum(r["bad"] for r in good)
            if not good or void:
                why = f"FAILED: {failed[0]}" if failed else f"VOID: {void} bad responses"
                out.append(f"| {size} | {kind} | {label} | {why} | | | | | | |")
                continue
            med = lambda k: statistics.median(r[k] for r in good)  # noqa: E731
            logged = f"{med('logged') * 100:.0f}%" if all("logged" in r for r in good) else "-"
            note = f" ({len(failed)} of {len(runs)} rounds failed: {failed[0]})" if failed else ""
            out.append(f"| {size} | {kind} | {label} | {med('rps'):,.0f}{note} | {med('cpu_us_per_req'):.1f} | "
                       f"{med('cpu_util') * 100:.0f} | {fmt(ratio(results, (kind, name), size, ('plain', 'nginx')))} | "
                       f"{fmt(ratio(results, (kind, name), size, ('chain', 'nginx')))} | "
                       f"{fmt(ratio(results, (kind, name), size, ('plain', 'pingora')))} | {logged} |")
    nginx = {("nginx", size, "wrk"): [r for r in results.get(("plain", "nginx", size), []) if "failed" not in r]
             for size in sizes}
    out += bench.baseline_check(nginx, sizes, ["wrk"])
    for name in sorted({name for _, name in skipped}):
        out.append(f"\nSkipped, not installed: {name}. Install: {INSTALL.get(name, name)}.")
    return "\n".join(out) + "\n"


def quick_summary(results):
    """make bench-quick's lines: Portico's ratios at 12 B."""
    lines = []
    for kind in ("plain", "chain"):
        key = (kind, "portico")
        parts = [f"{fmt_ratio(ratio(results, key, '12B', base))} {label}"
                 for base, label in ((("plain", "nginx"), "nginx plain"), (("chain", "nginx"), "nginx chain"),
                                     (("plain", "pingora"), "bare Pingora"))]
        lines.append(f"Portico {kind}, 12 B: " + ", ".join(parts))
    return "\n".join(lines)


def fmt_ratio(x):
    return f"{x:.2f}x" if x is not None else "n/a"


if __name__ == "__main__":
    main()
