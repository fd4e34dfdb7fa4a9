#!/usr/bin/env python3
"""The call log's cost and its queries at scale (bench/README.md, "The call
log"). Prints a Markdown table, also written to
bench/results/<date>-calllog.md.

1. **CPU per request:** the one-core chain scenario of bench.py (key_auth,
   rate_limit, metrics, access log; file mode), with the call log off and on
   (`server.call_log: {}`, state_dir in a temp dir), alternated for ROUNDS
   rounds of DURATION seconds. The gateway, and so its writer thread, is
   pinned to GATEWAY_CPUS; the upstream nginx and wrk to CLIENT_CPUS. The
   added cost is 1e6/rps_on - 1e6/rps_off microseconds per request (target:
   at most 2). After each "on" round the rows in calls.db and the minute
   rollups' `requests` are checked against the gateway's request count and
   what wrk sent, and `portico_call_log_dropped_total` must be 0.
2. **Sustained rate:** the call log on, oha offering SUSTAIN_RATE rps
   (`-q`) for SUSTAIN_DURATION seconds. When short probes show that rate
   cannot be carried on this machine (served under 98% of it, or records
   dropped), the rate is lowered to 90% of what was served and probed
   again; the long run then offers the highest rate that held, and the table
   says so. Reports offered and served rates, records dropped and written,
   and the rollups' count against the requests.
3. **Queries at scale:** ROWS (10 million) raw rows in `calls` over the last
   7 days, with minute rollups for those 7 days and hourly and daily
   rollups for 31 days, consistent with them (the rollups of the raw days
   are summed from the rows; older days repeat the pattern of the same
   weekday), generated with SQLite itself into a calls.db whose schema
   Portico's migrations made. 20 services (two of them AI services taking
   ~5% of calls, with providers, models, tokens and cost), 200 routes, 100
   applications in 10 teams, each application calling mostly three
   services; 93% 2xx, 1% 3xx, 5% 4xx, 1% 5xx. Then Portico in store mode
   reads it: the admin API's analytics and log pages are timed with one
   warm-up and the median of 5 (targets: summary and top-N under 200 ms,
   log pages under 300 ms). Reports the file's size and its size per
   million rows. A log page over its target is shown with the plan SQLite
   chooses for the SQL Portico sends (src/calllog/query.rs). A database
   made by an older Portico (no rollup projections yet) gets them filled
   from its full rollups before the queries.

Knobs are environment variables or flags: GATEWAY_CPUS, CLIENT_CPUS,
ROUNDS, DURATION, CONNECTIONS, SUSTAIN_RATE, SUSTAIN_DURATION, PROBE
(seconds per probe), ROWS, PARTS (e.g. `cpu,sustain,queries`), MACHINE.

Standard library only, besides nginx, wrk, oha and taskset (make bench-deps).
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (upstream nginx, chain config, wrk/oha runners, /proc readers)

ADMIN_TOKEN = "calllog-bench-token"
STORE_PORT = 19780
STORE_ADMIN = 19781
DAY_MS = 86_400_000
# Upper bounds of the latency histogram's buckets, in ms (src/calllog/rollup.rs, BOUNDS_MS).
BOUNDS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]
DIMENSIONS = ["service", "service_team", "route", "application", "team", "status_class", "provider", "model"]
SUMS = ["requests", "errors", "bytes_in", "bytes_out", "duration_us", "input_tokens", "cached_tokens",
        "output_tokens", "cost_usd"]
HIST = [f"h{i}" for i in range(len(BOUNDS_MS) + 1)]
# The rollups' projections: table suffix and the dimensions kept, the others '' (src/calllog/schema.rs).
PROJECTIONS = [
    ("total", ["status_class"]),
    ("service", ["service", "service_team", "status_class"]),
    ("application", ["application", "team", "status_class"]),
    ("model", ["provider", "model", "status_class"]),
    ("teams", ["service_team", "team", "status_class"]),
    ("route", ["service", "service_team", "route", "status_class"]),
]
# The rollup tables' primary key, in its order (src/calllog/schema.rs).
ROLLUP_KEY = "bucket, service, route, application, status_class, provider, model, service_team, team"


# ---------------------------------------------------------------------------
# Gateways


class Gateway:
    """A Portico process on a generated config, pinned to `cpus`."""

    def __init__(self, binary, work, name, config, cpus, port, env=None):
        self.conf = os.path.join(work, f"{name}.yaml")
        with open(self.conf, "w") as f:
            f.write(config)
        self.log_path = os.path.join(work, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpus, binary, "run", "-c", self.conf],
            stdout=self.log,
            stderr=self.log,
            env=dict(os.environ, RUST_LOG="warn", **(env or {})),
        )
        try:
            bench.wait_port(port, timeout=120)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"Portico did not start:\n{open(self.log_path).read()[-3000:]}")

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def chain_config(work, threads, state_dir=None):
    """bench.py's chain scenario; with `state_dir`, the call log on in it."""
    text = bench.portico_config(work, "chain", threads)
    if state_dir is None:
        return text
    return text.replace("server:\n", f"server:\n  state_dir: {state_dir}\n  call_log: {{}}\n", 1)


def store_config(work, calls_db):
    """Store mode reading the generated call log. Retention is widened so
    that the writer deletes nothing while the queries run: the generated
    raw rows and minute rollups reach up to an hour past the default 7 days."""
    return (
        "server:\n"
        f"  listeners: [{{address: 127.0.0.1:{STORE_PORT}}}]\n"
        f"  admin: 127.0.0.1:{STORE_ADMIN}\n"
        "  threads: 1\n"
        "  access_log: {path: off}\n"
        f"  pid_file: {work}/store-portico.pid\n"
        f"  upgrade_sock: {work}/store-upgrade.sock\n"
        f"  state_dir: {work}/store-state\n"
        f"  store: 'sqlite://{work}/store.db'\n"
        f"  call_log: {{url: 'sqlite://{calls_db}', retention: {{raw_age: 8d, minute: 8d}}}}\n"
    )


def metrics(port):
    """Counters read from the admin listener's /metrics."""
    names = ["portico_requests_total", "portico_call_log_dropped_total", "portico_call_log_written_total"]
    status, _, body = bench.http_get(f"http://127.0.0.1:{port}/metrics")
    out = dict.fromkeys(names, 0.0)
    for line in body.decode(errors="replace").splitlines() if status == 200 else []:
        for name in names:
            if line.startswith(name + "{") or line.startswith(name + " "):
                out[name] += float(line.rsplit(" ", 1)[1])
    return out


def settle(port, timeout=120.0):
    """Counters once the writer has caught up: every request counted is
    written or dropped (each makes one record; nothing here is sampled out),
    and the counters stopped moving. The last reading after `timeout`."""
    last = None
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = metrics(port)
        done = m["portico_call_log_written_total"] + m["portico_call_log_dropped_total"] >= m["portico_requests_total"]
        if done and m == last:
            return m
        last = m
        time.sleep(0.5)
    return last


def db_counts(path):
    """(raw rows, sum of requests in the minute, hour and day rollups)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        sums = [con.execute(f"SELECT COALESCE(SUM(requests), 0) FROM {t}").fetchone()[0]
                for t in ("calls_minute", "calls_hour", "calls_day")]
        return rows, sums
    finally:
        con.close()


# ---------------------------------------------------------------------------
# 1. CPU per request


def cpu_part(args, work, lua):
    url = f"http://127.0.0.1:{bench.GATEWAY_PORT}/12B"
    body = bench.body_of(12)
    runs = {"off": [], "on": []}
    audits = []
    for rnd in range(args.rounds):
        for mode in ("off", "on"):
            state = tempfile.mkdtemp(prefix="state-", dir=work) if mode == "on" else None
            gw = Gateway(args.binary, work, f"chain-{mode}", chain_config(work, 1, state), args.gateway_cpus,
                         bench.GATEWAY_PORT)
            try:
                bench.wait_http_ok(url, headers={"x-api-key": bench.API_KEY})
                probe_ok = bench.chain_probe()  # 2 requests
                warm = bench.run_wrk(url, body, 2, args.connections, args.client_cpus, lua)
                r = bench.measure(gw, "wrk", url, body, 12, args, lua)
                runs[mode].append(r)
                print(f"round {rnd + 1} call log {mode:3} {r['rps']:9.0f} rps  cpu {r['cpu_util'] * 100:.0f}%  "
                      f"{r['cpu_us_per_req']:.2f} µs/req{'  VOID' if r['bad'] else ''}", flush=True)
                if mode == "on":
                    m = settle(bench.ADMIN_PORT)
                    rows, sums = db_counts(os.path.join(state, "calls.db"))
                    sent = 1 + 2 + warm["requests"] + r["requests"]  # wait_http_ok, probe, warm-up, run
                    audits.append({"sent": sent, "counted": m["portico_requests_total"], "rows": rows,
                                   "minute": sums[0], "written": m["portico_call_log_written_total"],
                                   "dropped": m["portico_call_log_dropped_total"], "probe": probe_ok,
                                   "conns": args.connections})
                    a = audits[-1]
                    print(f"round {rnd + 1} audit: wrk {sent} sent, {a['counted']:.0f} counted, {rows} rows, "
                          f"{sums[0]} in minute rollups, {a['written']:.0f} written, {a['dropped']:.0f} dropped",
                          flush=True)
            finally:
                gw.stop()
                if state:
                    shutil.rmtree(state, ignore_errors=True)
    return runs, audits


def audit_ok(a):
    """Every request the gateway counted has its row and its rollup count,
    nothing was dropped, and wrk's count differs only by requests cut off
    in flight when it stopped (at most one per connection in each of its
    two runs, the warm-up and the measured one)."""
    return (a["rows"] == a["counted"] == a["minute"] == a["written"] and a["dropped"] == 0 and a["probe"]
            and 0 <= a["counted"] - a["sent"] <= 2 * a["conns"])


# ---------------------------------------------------------------------------
# 2. Sustained rate


def sustain_part(args, work):
    url = f"http://127.0.0.1:{bench.GATEWAY_PORT}/12B"
    lua = os.path.join(work, "check.lua")
    probes = []

    def one(rate, duration):
        state = tempfile.mkdtemp(prefix="state-", dir=work)
        gw = Gateway(args.binary, work, "sustain", chain_config(work, 1, state), args.gateway_cpus, bench.GATEWAY_PORT)
        try:
            bench.wait_http_ok(url, headers={"x-api-key": bench.API_KEY})
            bench.run_wrk(url, bench.body_of(12), 2, args.connections, args.client_cpus, lua)
            pids = gw.pids()
            cpu0, t0 = bench.proc_cpu_seconds(pids), time.time()
            r = bench.run_oha(url, 12, duration, args.connections, args.client_cpus, rate=rate)
            r["cpu_util"] = (bench.proc_cpu_seconds(pids) - cpu0) / (time.time() - t0)
            m = settle(bench.ADMIN_PORT)
            rows, sums = db_counts(os.path.join(state, "calls.db"))
            r.update(rate=rate, duration=duration, counted=m["portico_requests_total"], rows=rows, minute=sums[0],
                     written=m["portico_call_log_written_total"], dropped=m["portico_call_log_dropped_total"])
            r["held"] = r["rps"] >= 0.98 * rate and r["dropped"] == 0 and not r["bad"]
            print(f"offered {rate} rps for {duration}s: served {r['rps']:.0f} rps, cpu {r['cpu_util'] * 100:.0f}%, "
                  f"{r['dropped']:.0f} dropped, {r['written']:.0f} written, {rows} rows, {sums[0]} in minute "
                  f"rollups, {r['counted']:.0f} counted{'  (held)' if r['held'] else ''}", flush=True)
            return r
        finally:
            gw.stop()
            shutil.rmtree(state, ignore_errors=True)

    rate = args.sustain_rate
    for _ in range(args.probes):
        p = one(rate, args.probe)
        probes.append(p)
        if p["held"]:
            break
        rate = int(min(p["rps"], rate) * 0.9 / 500) * 500
    final = one(rate, args.sustain_duration)
    return probes, final


# ---------------------------------------------------------------------------
# 3. Queries at scale


def hist_bucket_sql(col):
    """The histogram bucket of a latency in µs, as rollup.rs's bucket_of."""
    whens = " ".join(f"WHEN {col} <= {b * 1000} THEN {i}" for i, b in enumerate(BOUNDS_MS))
    return f"CASE {whens} ELSE {len(BOUNDS_MS)} END"


# One seed row per call: its number and independent random values 0..999999.
SEED_SQL = """
INSERT INTO seed
WITH RECURSIVE c(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM c WHERE n < ?)
SELECT n, abs(random() % 1000000), abs(random() % 1000000), abs(random() % 1000000), abs(random() % 1000000),
       abs(random() % 1000000), abs(random() % 1000000), abs(random() % 1000000) FROM c
"""

# A call from its seed: application skewed to low numbers, mostly one of its
# three services (AI services 18 and 19 on ~5%), routes skewed within the
# service, the status mix of the docstring, latency by a power law.
CALLS_SQL = """
INSERT INTO calls (at_ms, request_id, client_ip, method, host, path, route, service, service_team, application,
    team, credential, upstream, target, status, error, bytes_in, bytes_out, duration_us, upstream_us, retries,
    provider, model, model_answered, input_tokens, cached_tokens, output_tokens, cost_usd, usage_estimated, detail)
SELECT at_ms,
    printf('%012X', at_ms) || hex(randomblob(7)),
    '10.0.' || app || '.' || (1 + r3 % 250),
    CASE WHEN ai THEN 'POST' WHEN r6 % 100 < 80 THEN 'GET' WHEN r6 % 100 < 95 THEN 'POST'
         WHEN r6 % 100 < 98 THEN 'PUT' ELSE 'DELETE' END,
    'api.example.com',
    CASE WHEN ai THEN '/svc' || svc || '/r' || k || '/v1/chat/completions'
         ELSE '/svc' || svc || '/r' || k || '/items/' || (r7 % 5000) END,
    'svc' || svc || '-r' || k, 'svc' || svc, 'team' || (svc % 10), 'app' || app, 'team' || (app % 10),
    'app' || app || '-key', 'svc' || svc, '10.1.' || svc || '.' || (1 + r5 % 3) || ':8080',
    status,
    CASE status WHEN 502 THEN 'upstream_connect_failed' WHEN 504 THEN 'upstream_timeout' END,
    CASE WHEN ai THEN 500 + r7 % 8000 WHEN r6 % 100 < 80 THEN 0 ELSE 200 + r7 % 2000 END,
    CASE WHEN ai THEN 400 + r4 % 4000 ELSE 100 + r7 % 20000 END,
    duration,
    CASE WHEN status = 502 THEN NULL ELSE duration - 250 END,
    CASE WHEN status = 502 THEN 1 ELSE 0 END,
    CASE WHEN ai THEN provider END, CASE WHEN ai THEN model END, CASE WHEN ai THEN model || '-2025' END,
    CASE WHEN ai THEN input END, CASE WHEN ai THEN cached END, CASE WHEN ai THEN output END,
    CASE WHEN ai THEN (input * price_in + output * price_out) / 1e6 END,
    CASE WHEN ai THEN 0 END, NULL
FROM (
  SELECT *,
    CASE WHEN status = 504 THEN 30000000
         WHEN ai THEN 300000 + (r6 / 100) * 800
         ELSE 400 + CAST(((r6 / 100) / 10000.0) * ((r6 / 100) / 10000.0) * ((r6 / 100) / 10000.0)
                         * ((r6 / 100) / 10000.0) * 400000 AS INTEGER) END AS duration,
    CASE r7 % 4 WHEN 0 THEN 'openai' WHEN 1 THEN 'openai' WHEN 2 THEN 'anthropic' ELSE 'mistral' END AS provider,
    CASE r7 % 4 WHEN 0 THEN 'gpt-4o-mini' WHEN 1 THEN 'gpt-4o' WHEN 2 THEN 'claude-sonnet-4'
         ELSE 'mistral-large' END AS model,
    CASE r7 % 4 WHEN 0 THEN 0.15 WHEN 1 THEN 2.5 WHEN 2 THEN 3.0 ELSE 2.0 END AS price_in,
    CASE r7 % 4 WHEN 0 THEN 0.6 WHEN 1 THEN 10.0 WHEN 2 THEN 15.0 ELSE 6.0 END AS price_out,
    100 + r1 % 3000 AS input, CASE WHEN r2 % 4 = 0 THEN (100 + r1 % 3000) / 2 ELSE 0 END AS cached,
    20 + r4 % 800 AS output
  FROM (
    SELECT *,
      CASE WHEN ai THEN 18 + app % 2 WHEN r2 % 100 < 70 THEN app % 18 WHEN r2 % 100 < 90 THEN (app * 7 + 3) % 18
           ELSE (app * 13 + 5) % 18 END AS svc,
      CAST((r4 / 1e6) * (r4 / 1e6) * 10 AS INTEGER) AS k,
      CASE WHEN r5 % 1000 < 900 THEN 200 WHEN r5 % 1000 < 930 THEN 201 WHEN r5 % 1000 < 940 THEN 304
           WHEN r5 % 1000 < 960 THEN 404 WHEN r5 % 1000 < 975 THEN 401 WHEN r5 % 1000 < 985 THEN 429
           WHEN r5 % 1000 < 990 THEN 400 WHEN r5 % 1000 < 994 THEN 500 WHEN r5 % 1000 < 997 THEN 502
           ELSE 504 END AS status
    FROM (
      SELECT n, r1, r2, r3, r4, r5, r6, r7,
        :start + (n * :span) / :rows + r7 % :spacing AS at_ms,
        CAST((r1 / 1e6) * (r1 / 1e6) * 100 AS INTEGER) AS app,
        r3 % 1000 < 50 AS ai
      FROM seed ORDER BY n)))
"""


def rollup_select(source, bucket_expr, sums=None):
    """SELECT of rollup rows from `source`, grouped by bucket and dimensions
    in the primary key's order (so inserts append to its index)."""
    sums = sums or ", ".join(f"SUM({c})" for c in SUMS + HIST)
    return (f"SELECT {bucket_expr} AS b, service, service_team, route, application, team, status_class, provider, "
            f"model, {sums} FROM {source} GROUP BY b, service, route, application, status_class, provider, model, "
            f"service_team, team")


def generate(path, rows, now_ms, log=print):
    """Fills a calls.db that Portico created: ROWS calls over the 7 days up
    to `now_ms` (from an hour boundary, ids in time order) and consistent
    rollups for 31 days. Returns the generation's facts."""
    hour, day = 3_600_000, DAY_MS
    raw_start = now_ms // hour * hour - 7 * day
    span = now_ms - 60_000 - raw_start
    hist_start = (now_ms // day * day - 31 * day) // 1000
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -1000000")
    con.execute("PRAGMA temp_store = FILE")
    if con.execute("SELECT COUNT(*) FROM calls").fetchone()[0]:
        raise RuntimeError(f"{path}: not empty")
    indexes = con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        con.execute(f"DROP INDEX {name}")
    con.execute("CREATE TEMP TABLE seed (n INTEGER PRIMARY KEY, r1, r2, r3, r4, r5, r6, r7)")
    params = {"start": raw_start, "span": span, "rows": rows, "spacing": max(span // rows, 1)}
    t0 = time.time()
    chunk = 1_000_000
    for lo in range(0, rows, chunk):
        hi = min(lo + chunk, rows) - 1
        con.execute("BEGIN")
        con.execute(SEED_SQL, (lo, hi))
        con.execute(CALLS_SQL, params)
        con.execute("DELETE FROM seed")
        con.execute("COMMIT")
        log(f"  {hi + 1:,} rows ({time.time() - t0:.0f} s)")
    for name, sql in indexes:  # Portico's own CREATE INDEX statements, as its migration wrote them
        t = time.time()
        con.execute(sql)
        log(f"  index {name} ({time.time() - t:.0f} s)")
    con.execute("BEGIN")
    minute = ", ".join(
        ["COUNT(*)", "SUM(status >= 500 OR error IS NOT NULL)", "SUM(bytes_in)", "SUM(bytes_out)", "SUM(duration_us)",
         "COALESCE(SUM(input_tokens), 0)", "COALESCE(SUM(cached_tokens), 0)", "COALESCE(SUM(output_tokens), 0)",
         "COALESCE(SUM(cost_usd), 0.0)"] + [f"SUM(hb = {i})" for i in range(len(HIST))])
    raw = (f"(SELECT at_ms / 1000 AS secs, COALESCE(service, '') AS service, "
           f"COALESCE(service_team, '') AS service_team, route, COALESCE(application, '') AS application, "
           f"COALESCE(team, '') AS team, status / 100 AS status_class, COALESCE(provider, '') AS provider, "
           f"COALESCE(model, '') AS model, status, error, bytes_in, bytes_out, duration_us, input_tokens, "
           f"cached_tokens, output_tokens, cost_usd, {hist_bucket_sql('duration_us')} AS hb FROM calls)")
    cols = f"bucket, {', '.join(DIMENSIONS)}, {', '.join(SUMS + HIST)}"
    t = time.time()
    con.execute(f"INSERT INTO calls_minute ({cols}) {rollup_select(raw, 'secs - secs % 60', minute)}")
    log(f"  minute rollups ({time.time() - t:.0f} s)")
    con.execute(f"INSERT INTO calls_hour ({cols}) {rollup_select('calls_minute', 'bucket - bucket % 3600')}")
    # Hours before the raw days: the same hour one, two, ... weeks later.
    first, last = raw_start // 1000, raw_start // 1000 + 7 * 86_400
    for weeks in range(1, 6):
        shift = weeks * 7 * 86_400
        con.execute(f"INSERT INTO calls_hour ({cols}) SELECT bucket - {shift}, {', '.join(DIMENSIONS)}, "
                    f"{', '.join(SUMS + HIST)} FROM calls_hour WHERE bucket >= ? AND bucket < ? AND bucket - ? >= ?",
                    (first, last, shift, hist_start))
    con.execute(f"INSERT INTO calls_day ({cols}) {rollup_select('calls_hour', 'bucket - bucket % 86400')}")
    con.execute("COMMIT")
    log(f"  hour and day rollups ({time.time() - t:.0f} s)")
    facts = {"rows": rows, "raw_from_ms": raw_start, "seconds": time.time() - t0}
    for table in ("calls_minute", "calls_hour", "calls_day"):
        n, req, b0, b1 = con.execute(
            f"SELECT COUNT(*), SUM(requests), MIN(bucket), MAX(bucket) FROM {table}").fetchone()
        facts[table] = {"rows": n, "requests": req, "buckets": 0 if not n else
                        (b1 - b0) // {"calls_minute": 60, "calls_hour": 3600, "calls_day": 86_400}[table] + 1}
    con.execute("PRAGMA journal_mode = WAL")
    con.close()
    fill_projections(path, log)
    return facts


def fill_projections(path, log=print):
    """Fills each rollup level's projection tables from its full rollup, as
    Portico's writer keeps them (src/calllog/rollup.rs); skipped when they
    already hold rows."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        if con.execute("SELECT COUNT(*) FROM calls_day_total").fetchone()[0]:
            return
        t = time.time()
        con.execute("BEGIN")
        cols = f"bucket, {', '.join(DIMENSIONS)}, {', '.join(SUMS + HIST)}"
        for level in ("calls_minute", "calls_hour", "calls_day"):
            for suffix, kept in PROJECTIONS:
                dims = ", ".join(d if d in kept else "''" for d in DIMENSIONS)
                group = ", ".join(["bucket"] + kept)
                sums = ", ".join(f"SUM({c})" for c in SUMS + HIST)
                con.execute(f"INSERT INTO {level}_{suffix} ({cols}) SELECT bucket, {dims}, {sums} "
                            f"FROM {level} GROUP BY {group}")
        con.execute("COMMIT")
        log(f"  rollup projections ({time.time() - t:.0f} s)")
    finally:
        con.close()


def table_sizes(path):
    """Bytes per table with its indexes (SQLite's dbstat), or {} without it."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        owner = dict(con.execute("SELECT name, tbl_name FROM sqlite_master"))
        out = {}
        for name, size in con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            out[owner.get(name, name)] = out.get(owner.get(name, name), 0) + size
        return out
    except sqlite3.Error:
        return {}
    finally:
        con.close()


def admin_get(path, timeout=300):
    """(status, seconds, body) of one admin API GET."""
    req = urllib.request.Request(f"http://127.0.0.1:{STORE_ADMIN}/admin/v1{path}")
    req.add_header("authorization", f"Bearer {ADMIN_TOKEN}")
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return r.status, time.perf_counter() - t, body
    except urllib.error.HTTPError as e:
        return e.code, time.perf_counter() - t, e.read()


def timed(path, times=5):
    """One warm-up, then the median of `times` runs, in ms; and the last body."""
    status, _, body = admin_get(path)
    if status != 200:
        raise RuntimeError(f"{path}: {status} {body[:500]!r}")
    ms = []
    for _ in range(times):
        status, secs, body = admin_get(path)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {body[:500]!r}")
        ms.append(secs * 1000)
    return statistics.median(ms), max(ms), json.loads(body)


def plan_sql(path, now_ms):
    """The SQL Portico sends for a log page `path` (as src/calllog/query.rs
    builds it) with its binds, for EXPLAIN QUERY PLAN; None for other paths
    (the analytics' tables and buckets are chosen by src/calllog/plan.rs)."""
    parts = urllib.parse.urlsplit(path)
    q = dict(urllib.parse.parse_qsl(parts.query))
    sums = ", ".join([f"CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {c}" for c in SUMS if c != "cost_usd"]
                     + ["COALESCE(SUM(cost_usd), 0.0) AS cost_usd"]
                     + [f"CAST(COALESCE(SUM({h}), 0) AS BIGINT) AS {h}" for h in HIST])
    if parts.path == "/logs":
        clauses, binds = [], []
        for col in ("service", "application"):
            if col in q:
                clauses.append(f"{col} = ?")
                binds.append(q[col])
        if "class" in q:
            c = int(q["class"][0])
            clauses += ["status >= ?", "status < ?"]
            binds += [c * 100, c * 100 + 100]
        if "path_prefix" in q:
            clauses.append("substr(path, 1, ?) = ?")
            binds += [len(q["path_prefix"]), q["path_prefix"]]
        if "cursor" in q:
            at, rid = (int(x) for x in q["cursor"].split("."))
            clauses.append("at_ms <= ? AND NOT (at_ms = ? AND id >= ?)")
            binds += [at, at, rid]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return f"SELECT * FROM calls {where} ORDER BY at_ms DESC, id DESC LIMIT {int(q.get('limit', 100)) + 1}", binds
    return None


def explain(db, path, now_ms):
    """(plan lines, seconds SQLite itself takes) for the SQL behind `path`."""
    mirrored = plan_sql(path, now_ms)
    if not mirrored:
        return None
    sql, binds = mirrored
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        plan = [row[3] for row in con.execute(f"EXPLAIN QUERY PLAN {sql}", binds)]
        t = time.perf_counter()
        con.execute(sql, binds).fetchall()
        return plan, time.perf_counter() - t, sql
    finally:
        con.close()


def generated_facts(db):
    """The facts of a calls.db generated before (see --db), or None."""
    try:
        with open(db + ".facts.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def queries_part(args, work):
    db = args.db or os.path.join(work, "calls.db")
    env = {"PORTICO_ADMIN_TOKEN": ADMIN_TOKEN}
    config = store_config(work, db)
    facts = generated_facts(db) if args.db else None
    if facts:
        print(f"reusing {db}, generated {datetime.datetime.fromtimestamp(facts['now_ms'] / 1000):%Y-%m-%d %H:%M}",
              flush=True)
        facts["reused"] = True
    else:
        facts = make_db(args, work, db, config, env)
    gw = Gateway(args.binary, work, "store", config, args.gateway_cpus, STORE_ADMIN, env)
    # A database made by an older Portico gets the projections' tables from
    # the migration when it opens; they are filled here from its rollups.
    bench.wait_http_ok(f"http://127.0.0.1:{STORE_ADMIN}/metrics")
    admin_get("/analytics/summary")
    fill_projections(db, log=lambda m: print(m, flush=True))
    results = []
    try:
        bench.wait_http_ok(f"http://127.0.0.1:{STORE_ADMIN}/metrics")
        now = int(time.time())
        month = now - 30 * 86_400
        page = admin_get("/logs?limit=100")
        first = json.loads(page[2])
        # A cursor half-way through the raw days: the row at the middle id.
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        mid = con.execute("SELECT id, at_ms FROM calls WHERE id = (SELECT (MIN(id) + MAX(id)) / 2 FROM calls)").fetchone()
        rid = con.execute("SELECT request_id FROM calls WHERE id = ?", (mid[0] // 3,)).fetchone()[0]
        con.close()
        deep = f"{mid[1]}.{mid[0]}"
        checks = [
            ("summary, 30 days", f"/analytics/summary?from={month}&to={now}", 200,
             lambda b: f"{b['requests']:,} requests ({b['granularity']})"),
            ("top 10 services by requests, 30 days", f"/analytics/top?from={month}&to={now}&by=service&metric=requests"
             "&limit=10", 200, lambda b: f"{len(b['items'])} items, first {b['items'][0]['name']}"),
            ("top 10 applications by cost, 30 days", f"/analytics/top?from={month}&to={now}&by=application&metric=cost"
             "&limit=10", 200, lambda b: f"{len(b['items'])} items, first {b['items'][0]['name']}"),
            ("timeseries, 30 days", f"/analytics/timeseries?from={month}&to={now}", 200,
             lambda b: f"{len(b['points'])} points of {b['step_seconds']} s ({b['granularity']})"),
            ("summary, 24 hours", f"/analytics/summary?from={now - 86_400}&to={now}", 200,
             lambda b: f"{b['requests']:,} requests ({b['granularity']})"),
            ("log page: service=svc3&class=5xx", "/logs?service=svc3&class=5xx&limit=100", 300,
             lambda b: f"{len(b['items'])} rows"),
            ("log page: application=app7&path_prefix=/svc", "/logs?application=app7&path_prefix=/svc&limit=100", 300,
             lambda b: f"{len(b['items'])} rows"),
            ("log page: unfiltered, first", "/logs?limit=100", 300, lambda b: f"{len(b['items'])} rows"),
            ("log page: unfiltered, via a cursor half-way down", f"/logs?limit=100&cursor={deep}", 300,
             lambda b: f"{len(b['items'])} rows"),
            ("log page: second page via next", f"/logs?limit=100&cursor={first['next']}", 300,
             lambda b: f"{len(b['items'])} rows"),
            ("one call by request id", f"/logs/{rid}", 300, lambda b: b["request_id"]),
        ]
        for name, path, target, what in checks:
            med, worst, body = timed(path)
            row = {"name": name, "path": path, "ms": med, "max": worst, "target": target, "what": what(body)}
            if med >= target:
                row["plan"] = explain(db, path, now * 1000)
            results.append(row)
            print(f"{name:50} {med:8.1f} ms (max {worst:.1f})  {row['what']}", flush=True)
    finally:
        gw.stop()
    return facts, results


def make_db(args, work, db, config, env):
    """A calls.db made by Portico's migrations, then filled by generate()."""
    if os.path.exists(db):
        raise RuntimeError(f"{db} exists but has no facts file: remove it to generate it anew")
    # Portico's migrations make the schema; nothing is recorded while it is up (no routes, no traffic).
    gw = Gateway(args.binary, work, "store-init", config, args.gateway_cpus, STORE_ADMIN, env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                ok = con.execute("SELECT COUNT(*) FROM sqlite_master WHERE name IN "
                                 "('calls', 'calls_minute', 'calls_hour', 'calls_day')").fetchone()[0] == 4
                con.close()
                if ok:
                    break
            except sqlite3.Error:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("Portico did not create calls.db")
    finally:
        gw.stop()
    now_ms = int(time.time() * 1000)
    print(f"generating {args.rows:,} rows into {db}", flush=True)
    facts = generate(db, args.rows, now_ms, log=lambda m: print(m, flush=True))
    facts["now_ms"] = now_ms
    facts["size"] = sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))
    facts["tables"] = table_sizes(db)
    if args.db:
        with open(db + ".facts.json", "w") as f:
            json.dump(facts, f)
    return facts


# ---------------------------------------------------------------------------
# Output


def versions(args):
    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    commit = first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"portico": f"{first_line([args.binary, '--version'])} (commit {commit})", "wrk": first_line(["wrk", "-v"]),
            "oha": first_line(["oha", "--version"]), "nginx": first_line(["nginx", "-v"]),
            "sqlite": sqlite3.sqlite_version, "cpu": cpu}


def render(args, v, cpu, sustain, queries):
    out = [
        f"# The call log, {datetime.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {args.machine}, {os.cpu_count()} CPUs ({v['cpu']}). {v['portico']}; {v['wrk']}; {v['oha']}; "
        f"{v['nginx']}; SQLite {v['sqlite']} (Python's, for generation and plans). Gateway (one worker thread, and "
        f"the call log's writer thread) pinned to CPUs {args.gateway_cpus}; upstream nginx and the load generator "
        f"to CPUs {args.client_cpus}. `{' '.join(sys.argv[1:]) or 'defaults'}`.",
    ]
    if cpu:
        runs, audits = cpu
        off = statistics.median(r["rps"] for r in runs["off"])
        on = statistics.median(r["rps"] for r in runs["on"])
        void = sum(r["bad"] for rs in runs.values() for r in rs)
        added = 1e6 / on - 1e6 / off
        out += [
            "", "## CPU the call log adds per request", "",
            f"The chain scenario of bench.py (12 B bodies, {args.connections} connections, wrk), call log off and on "
            f"in {args.rounds} alternated rounds of {args.duration} s; medians. Target: at most 2 µs per request.",
            "", "| call log | rps (rounds) | median rps | gateway CPU µs/req | CPU% |", "|---|---|---:|---:|---:|",
        ]
        for mode in ("off", "on"):
            rs = runs[mode]
            rates = ", ".join(f"{r['rps']:,.0f}" for r in rs)
            out.append(f"| {mode} | {rates} | "
                       f"{statistics.median(r['rps'] for r in rs):,.0f} | "
                       f"{statistics.median(r['cpu_us_per_req'] for r in rs):.2f} | "
                       f"{statistics.median(r['cpu_util'] for r in rs) * 100:.0f} |")
        out += ["", f"- rps on/off: **{on / off:.3f}x**; added per request: 1e6/{on:,.0f} - 1e6/{off:,.0f} = "
                f"**{added:.2f} µs** ({'met' if added <= 2 else 'MISSED'}: target ≤ 2 µs)"
                + ("" if not void else f"; **VOID: {void} wrong responses**"), "",
                "Every round with the call log on, counted after the run (the writer caught up):", "",
                "| round | wrk sent | requests counted | rows in calls | minute rollups' requests | written | "
                "dropped | verdict |", "|---:|---:|---:|---:|---:|---:|---:|---|"]
        for i, a in enumerate(audits):
            out.append(f"| {i + 1} | {a['sent']:,} | {a['counted']:,.0f} | {a['rows']:,} | {a['minute']:,} | "
                       f"{a['written']:,.0f} | {a['dropped']:,.0f} | "
                       f"{'every request' if audit_ok(a) else 'MISMATCH'} |")
        out += ["", "wrk sent: what the script sent (a readiness check, the 2-request chain probe, wrk's 2 s warm-up "
                "and its measured run). wrk's count leaves out the requests in flight when it stops (at most one "
                "per connection and run); the gateway counts and logs them."]
    if sustain:
        probes, final = sustain
        out += ["", "## Sustained rate with no drops", "",
                f"oha `-q` with {args.connections} connections, the call log on; `held`: served at least 98% of "
                "the offered rate, every response right, nothing dropped.", "",
                "| run | offered rps | served rps | gateway CPU% | dropped | written | rows | minute rollups' "
                "requests | requests counted | held |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for name, r in [(f"probe {r['duration']} s", r) for r in probes] + [(f"**{final['duration']} s run**", final)]:
            out.append(f"| {name} | {r['rate']:,} | {r['rps']:,.0f} | {r['cpu_util'] * 100:.0f} | {r['dropped']:,.0f} | "
                       f"{r['written']:,.0f} | {r['rows']:,} | {r['minute']:,} | {r['counted']:,.0f} | "
                       f"{'yes' if r['held'] else 'NO'} |")
        if final["rate"] < args.sustain_rate:
            out += ["", f"{args.sustain_rate:,} rps could not be offered through this machine's single gateway "
                    f"core (the probes above); the long run offered {final['rate']:,} rps, the highest rate "
                    "that held in a probe."]
        if args.sustain_duration < 600:
            out += ["", f"The long run was cut to {args.sustain_duration} s (the target's is 600 s)."]
    if queries:
        facts, results = queries
        mib = facts["size"] / 2**20
        out += ["", "## Queries at scale", "",
                f"{facts['rows']:,} raw rows over 7 days, generated in {facts['seconds']:.0f} s"
                + (f" (by an earlier run, at {datetime.datetime.fromtimestamp(facts['now_ms'] / 1000):%H:%M}; "
                   "reused)" if facts.get("reused") else "") + "; rollups: "
                + "; ".join(f"{t} {facts[t]['rows']:,} rows in {facts[t]['buckets']:,} buckets "
                            f"({facts[t]['rows'] / max(facts[t]['buckets'], 1):,.0f} a bucket), "
                            f"{facts[t]['requests']:,} requests"
                            for t in ("calls_minute", "calls_hour", "calls_day")) + ".",
                "",
                f"calls.db: **{mib:,.0f} MiB**, {mib / (facts['rows'] / 1e6):,.0f} MiB per million raw rows"
                + (" (" + ", ".join(f"{t} {s / 2**20:,.0f} MiB" for t, s in sorted(facts["tables"].items())
                                    if s > 2**20) + ", each with its indexes)" if facts["tables"] else "") + ".",
                "", "Admin API, one warm-up then the median of 5 (ms):", "",
                "| query | median ms | max ms | target | result |", "|---|---:|---:|---|---|"]
        for r in results:
            verdict = "met" if r["ms"] < r["target"] else "**MISSED**"
            out.append(f"| {r['name']} | {r['ms']:,.1f} | {r['max']:,.1f} | < {r['target']} ms: {verdict} | "
                       f"{r['what']} |")
        slow = [r for r in results if r.get("plan")]
        for r in slow:
            plan, secs, sql = r["plan"]
            out += ["", f"### {r['name']}: over target", "",
                    f"`GET /admin/v1{r['path']}`. The SQL Portico sends for it takes {secs * 1000:,.0f} ms in "
                    "Python's SQLite on the same file; its plan:", "", "```", sql, *plan, "```"]
    return "\n".join(out) + "\n"


def main():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/portico"))
    p.add_argument("--gateway-cpus", default=env("GATEWAY_CPUS", "0"))
    p.add_argument("--client-cpus", default=env("CLIENT_CPUS", "1"))
    p.add_argument("--rounds", type=int, default=int(env("ROUNDS", "3")))
    p.add_argument("--duration", type=int, default=int(env("DURATION", "10")), help="seconds per CPU round")
    p.add_argument("--connections", type=int, default=int(env("CONNECTIONS", "50")))
    p.add_argument("--sustain-rate", type=int, default=int(env("SUSTAIN_RATE", "20000")), help="offered rps")
    p.add_argument("--sustain-duration", type=int, default=int(env("SUSTAIN_DURATION", "600")))
    p.add_argument("--probe", type=int, default=int(env("PROBE", "10")), help="seconds per probe of a rate")
    p.add_argument("--probes", type=int, default=4, help="most rates probed before the long run")
    p.add_argument("--rows", type=int, default=int(env("ROWS", "10000000")), help="raw rows for the queries")
    p.add_argument("--parts", default=env("PARTS", "cpu,sustain,queries"))
    p.add_argument("--db", default=env("CALLS_DB"),
                   help="where the generated calls.db is kept (reused by later runs); default: a temp dir")
    p.add_argument("--machine", default=env("MACHINE", socket.gethostname()))
    args = p.parse_args()
    args.client_threads = 1  # bench.measure's wrk threads
    args.rate = args.fixed_rate = 0
    parts = set(args.parts.split(","))

    for tool in ["nginx", "wrk", "taskset"] + (["oha"] if "sustain" in parts else []):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (make bench-deps installs it)")
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} missing: build with `cargo build --release`")
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 65535):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65535), hard))
    work = tempfile.mkdtemp(prefix="portico-calllog-bench-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    lua = os.path.join(work, "check.lua")
    with open(lua, "w") as f:
        f.write(bench.WRK_LUA)
    cpu = sustain = queries = None
    failed = True
    try:
        if parts & {"cpu", "sustain"}:
            upstream = bench.Nginx(work, "upstream", bench.upstream_block(work), 1, args.client_cpus)
            try:
                bench.wait_port(bench.UPSTREAM_PORT)
                if "cpu" in parts:
                    cpu = cpu_part(args, work, lua)
                if "sustain" in parts:
                    sustain = sustain_part(args, work)
            finally:
                upstream.stop()
        if "queries" in parts:
            queries = queries_part(args, work)
        failed = False
    finally:
        table = render(args, versions(args), cpu, sustain, queries)
        print(table)
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        path = os.path.join(HERE, "results", f"{datetime.datetime.now():%Y-%m-%d-%H%M}-calllog.md")
        with open(path, "w") as f:
            f.write(table)
        print(f"written to {os.path.relpath(path, ROOT)}")
        if failed:
            print(f"the run failed: its configs and logs are kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
