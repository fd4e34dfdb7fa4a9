"""Shared helpers for Portico's AI end-to-end tests: free ports, the mock providers, the gateway.

Everything waits with deadlines (poll until ready or time is up), never with fixed sleeps.

- ``MockProviders``: runs ``mock_providers.py --port 0`` in a subprocess, learns its port from the first
  stdout line, and wraps ``/_mock/requests`` and ``/_mock/reset``.
- ``Gateway``: writes a config into a temp dir, runs ``portico check`` / ``portico run -c``, waits until
  the listener accepts, and stops it (SIGINT = fast shutdown, then SIGKILL).
- ``gateway_config``: the YAML used by the SDK tests (three providers on one mock, aliases, a fallback).
- ``ai_support``: whether the binary knows the ``ai`` config section (tests skip when it does not).

Env: ``PORTICO_BIN`` (default ``target/debug/portico``), ``AI_TEST_VERBOSE=1`` prints the logs at the
end, ``AI_TEST_KEEP=1`` keeps the temp dirs.
"""

import hashlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MOCK_SCRIPT = HERE / "mock_providers.py"

#: The key the gateway uses towards the mock providers (env MOCK_KEY_1 in the config).
PROVIDER_KEY = "mock-provider-key-1"
#: The second key of the multi-key provider `leaky` (env MOCK_KEY_2).
PROVIDER_KEY_2 = "mock-provider-key-2"
#: A key the mock refuses (env MOCK_BAD_KEY), for the provider `oai-badkey`.
BAD_PROVIDER_KEY = "revoked-provider-key"
#: The client's key, checked by key_auth (sent as x-api-key).
CLIENT_KEY = "client-key-team-a"
#: Consumers with budgets (test_charging.py): frank on one model, grace on everything.
FRANK_KEY = "client-key-frank"
GRACE_KEY = "client-key-grace"
#: What the OpenAI SDK sends as `Authorization: Bearer ...`; must never reach a provider.
CLIENT_BEARER = "sk-client-bearer-must-not-leak"

VERBOSE = os.environ.get("AI_TEST_VERBOSE") == "1"
KEEP = os.environ.get("AI_TEST_KEEP") == "1"


def free_port():
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=20.0, proc=None, what="server"):
    """Poll until 127.0.0.1:port accepts a connection; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")
            time.sleep(0.05)  # poll interval, bounded by the deadline above


def tail(path, lines=60):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(proc, first=signal.SIGINT, timeout=5.0):
    """Signal ``proc`` (SIGINT by default), then SIGKILL it if it is still there after ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(first)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class MockProviders:
    """The mock provider server in a subprocess. ``url``, ``port``, ``requests()``, ``reset()``."""

    def __init__(self, keys=(PROVIDER_KEY, PROVIDER_KEY_2)):
        self.keys = list(keys)
        self.dir = Path(tempfile.mkdtemp(prefix="portico-mock-"))
        self.log_path = self.dir / "mock.log"
        self.proc = None
        self.port = None

    def start(self, timeout=15.0):
        env = dict(os.environ, MOCK_KEYS=",".join(self.keys), PYTHONUNBUFFERED="1")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, str(MOCK_SCRIPT), "--port", "0"], env=env,
                                     stdout=subprocess.PIPE, stderr=self._log)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"mock providers did not start: {line!r}\n{tail(self.log_path)}")
            if select.select([self.proc.stdout], [], [], left)[0]:
                line += os.read(self.proc.stdout.fileno(), 1)  # unbuffered: select() stays truthful
        self.port = int(line.decode().strip().rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for_port(self.port, timeout, self.proc, "mock providers")
        return self

    def _call(self, method, path):
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def requests(self, path_prefix=None):
        """What the mock received since the last reset: [{method, path, headers, body}], optionally filtered."""
        recs = self._call("GET", "/_mock/requests")
        return [r for r in recs if path_prefix is None or r["path"].startswith(path_prefix)]

    def reset(self):
        self._call("POST", "/_mock/reset")

    def stop(self):
        stop_process(self.proc)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "_log", None):
            self._log.close()
        if VERBOSE:
            print(f"\n--- mock log ---\n{tail(self.log_path)}", file=sys.stderr)
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


def gateway_bin():
    """The portico binary: env PORTICO_BIN, else target/debug/portico under the repo root."""
    return Path(os.environ.get("PORTICO_BIN") or ROOT / "target" / "debug" / "portico")


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def gateway_config(port, admin_port, mock_port, workdir, models=""):
    """Portico YAML for the SDK tests: providers oai/claude/gem on the mock, aliases, key_auth (x-api-key).
    ``models``: more aliases, YAML lines indented by four spaces, e.g. ``"    a: {targets: [...]}\n"``.

    OpenAI-style base URLs include the version prefix (`/chat/completions` is appended, as with
    https://api.openai.com/v1); Anthropic and Gemini base URLs are the bare host. Scripts that answer 429
    use their own providers (`*-limited`) since a 429 cools the provider's key down for Retry-After."""
    mock = f"http://127.0.0.1:{mock_port}"
    return f"""\
server:
  listeners: [{{address: 127.0.0.1:{port}}}]
  threads: 2
  admin: 127.0.0.1:{admin_port}
  access_log: {{path: {workdir}/access.log}}
  pid_file: {workdir}/portico.pid
  upgrade_sock: {workdir}/upgrade.sock
  # Budget spend is kept here across restarts: a fresh one per run.
  state_dir: {workdir}/state
consumers:
  - name: team-a
    credentials:
      api_keys: [{{sha256: {sha256_hex(CLIENT_KEY)}}}]
  - name: frank
    credentials:
      api_keys: [{{sha256: {sha256_hex(FRANK_KEY)}}}]
  - name: grace
    groups: [researchers]
    credentials:
      api_keys: [{{sha256: {sha256_hex(GRACE_KEY)}}}]
ai:
  providers:
    oai: {{kind: openai, base_url: "{mock}/v1", keys: [{{env: MOCK_KEY_1}}]}}
    claude: {{kind: anthropic, base_url: "{mock}", keys: [{{env: MOCK_KEY_1}}]}}
    gem: {{kind: gemini, base_url: "{mock}", keys: [{{env: MOCK_KEY_1}}]}}
    # Only for 429 scripts: a 429 cools the key down, which must not touch the other tests' providers.
    oai-limited: {{kind: openai, base_url: "{mock}/v1", keys: [{{env: MOCK_KEY_1}}]}}
    claude-limited: {{kind: anthropic, base_url: "{mock}", keys: [{{env: MOCK_KEY_1}}]}}
    # Only for the 429 without Retry-After.
    oai-bare: {{kind: openai, base_url: "{mock}/v1", keys: [{{env: MOCK_KEY_1}}]}}
    # A key the mock refuses.
    oai-badkey: {{kind: openai, base_url: "{mock}/v1", keys: [{{env: MOCK_BAD_KEY}}]}}
    # One key, for a 429 on one model beside calls of another.
    oai-permodel: {{kind: openai, base_url: "{mock}/v1", keys: [{{env: MOCK_KEY_1}}]}}
    # Two keys, for the scripts that echo the key they got.
    leaky: {{kind: openai, base_url: "{mock}/v1", keys: [{{env: MOCK_KEY_1}}, {{env: MOCK_KEY_2}}]}}
    # A vendor that speaks Chat Completions only (the Responses API reaches it translated).
    compat: {{kind: openai_compatible, base_url: "{mock}/v1", keys: [{{env: MOCK_KEY_1}}]}}
    # Azure OpenAI: the deployment goes into the URL path.
    az: {{kind: azure_openai, base_url: "{mock}", api_version: "2024-10-21", keys: [{{env: MOCK_KEY_1}}]}}
  # The mock's scripted models, priced so that what they cost shows (USD per million tokens).
  prices:
    long: {{input: 1.0, output: 2.0}}
    nousage-long: {{input: 1.0, output: 2.0}}
    gemini-long: {{input: 1.0, output: 2.0}}
    gemini-nousage-long: {{input: 1.0, output: 2.0}}
  budgets:
    # frank may spend $0.0001 a day on gpt-4o, whatever he calls it; one mock call costs $0.0000725.
    - {{consumer: frank, model: frank-4o, usd_per_day: 0.0001}}
    # grace has a USD budget on everything: unpriced models are refused for her.
    - {{consumer: grace, usd_per_day: 1000}}
  # frank and grace's group may use only these; team-a, named by no entry, may use everything.
  access:
    - {{consumer: frank, models: [frank-4o, frank-any, oai/*]}}
    - {{group: researchers, models: [oai/*, gemini-flash]}}
  models:
    frank-4o: {{targets: [{{provider: oai, model: gpt-4o}}]}}
    claude-then-oai: {{targets: [{{provider: claude, model: claude-sonnet-4}}, {{provider: oai, model: gpt-4o}}]}}
    fallback-500: {{targets: [{{provider: oai, model: fail-500}}, {{provider: claude, model: claude-sonnet-4}}]}}
    frank-any: {{targets: [{{provider: oai, model: gpt-4o}}, {{provider: claude, model: claude-sonnet-4}}]}}
    claude-sonnet: {{targets: [{{provider: claude, model: claude-sonnet-4}}]}}
    gemini-flash: {{targets: [{{provider: gem, model: gemini-2.0-flash}}]}}
    resilient: {{targets: [{{provider: oai-limited, model: fail-429}}, {{provider: claude, model: claude-sonnet-4}}]}}
{models}routes:
  - name: llm
    paths: [/v1/*]
    ai: {{}}
    policies:
      - key_auth: {{}}
  # A route with the AI response cache (exact match, per consumer).
  - name: llm-cached
    paths: [/cached/v1/*]
    ai: {{cache: {{ttl: 10m}}}}
    policies:
      - key_auth: {{}}
  # A route offering one alias, mounted below a prefix.
  - name: llm-restricted
    paths: [/restricted/v1/*]
    ai: {{models: [claude-sonnet]}}
    policies:
      - key_auth: {{}}
"""


def ai_support(binary):
    """(True, "") when ``portico check`` accepts an ``ai`` section, (False, reason) when it reports an
    unknown field `ai`. Any other failure of `check` raises (the test config is then wrong or the
    gateway broken: that must be a failure, not a skip)."""
    work = Path(tempfile.mkdtemp(prefix="portico-aicheck-"))
    try:
        cfg = work / "portico.yaml"
        cfg.write_text(gateway_config(free_port(), free_port(), free_port(), work))
        env = dict(os.environ, MOCK_KEY_1=PROVIDER_KEY, MOCK_KEY_2=PROVIDER_KEY_2, MOCK_BAD_KEY=BAD_PROVIDER_KEY)
        res = subprocess.run([str(binary), "check", "-c", str(cfg)], env=env, capture_output=True, text=True,
                             timeout=60)
        out = (res.stdout + res.stderr).strip()
        if res.returncode == 0:
            return True, ""
        if "unknown field `ai`" in out:
            return False, f"{binary} has no AI gateway support yet (`portico check`: {out.splitlines()[0]})"
        raise RuntimeError(f"`portico check` refused the AI test config:\n{out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Gateway:
    """A running ``portico run -c <config>``. ``url`` is the listener; ``log()`` its stdout+stderr."""

    def __init__(self, mock_port, binary=None, models=""):
        self.binary = Path(binary or gateway_bin())
        self.mock_port = mock_port
        self.models = models
        self.dir = Path(tempfile.mkdtemp(prefix="portico-ai-"))
        self.log_path = self.dir / "portico.log"
        self.proc = None

    def start(self, timeout=30.0, attempts=3):
        """Start on fresh free ports; retry when the process dies early (a port taken in between)."""
        env = dict(os.environ, MOCK_KEY_1=PROVIDER_KEY, MOCK_KEY_2=PROVIDER_KEY_2, MOCK_BAD_KEY=BAD_PROVIDER_KEY,
                   RUST_BACKTRACE="1")
        for attempt in range(attempts):
            self.port, self.admin_port = free_port(), free_port()
            self.config = self.dir / "portico.yaml"
            self.config.write_text(gateway_config(self.port, self.admin_port, self.mock_port, self.dir, self.models))
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([str(self.binary), "run", "-c", str(self.config)], env=env, cwd=self.dir,
                                         stdout=self._log, stderr=subprocess.STDOUT)
            try:
                wait_for_port(self.port, timeout, self.proc, "portico")
                self.url = f"http://127.0.0.1:{self.port}"
                return self
            except RuntimeError as e:
                died_early = self.proc.poll() is not None  # e.g. the port was taken: try new ports
                self.stop(cleanup=False)
                if attempt == attempts - 1 or not died_early:
                    raise RuntimeError(f"{e}\n--- portico log ---\n{self.log()}") from None

    def log(self, lines=80):
        return tail(self.log_path, lines)

    def stop(self, cleanup=True):
        stop_process(self.proc)
        if getattr(self, "_log", None):
            self._log.close()
        if cleanup:
            if VERBOSE:
                print(f"\n--- portico log ---\n{self.log()}", file=sys.stderr)
            if not KEEP:
                shutil.rmtree(self.dir, ignore_errors=True)


def start_module(models="", provider=None):
    """What a test module's ``setUpModule`` starts: the mock providers (or ``provider``, a started server with
    ``.port`` and ``.stop()``) and a gateway on them. Skips when the binary has no ``ai`` section; a missing
    binary is an error."""
    binary = gateway_bin()
    if not binary.exists():
        raise RuntimeError(f"portico binary not found at {binary}: build it (cargo build) or set PORTICO_BIN")
    ok, reason = ai_support(binary)
    if not ok:
        raise unittest.SkipTest(reason)
    mock = provider or MockProviders().start()
    try:
        return mock, Gateway(mock.port, binary, models=models).start()
    except BaseException:
        mock.stop()
        raise


def stop_module(mock, gateway):
    """What a test module's ``tearDownModule`` stops."""
    if gateway:
        gateway.stop()
    if mock:
        mock.stop()


def access_record(gateway, request_id, timeout=40.0):
    """The access-log record of ``request_id``, once written (polls the file until the deadline)."""
    deadline = time.monotonic() + timeout
    path = gateway.dir / "access.log"
    while True:
        if path.exists():
            for line in path.read_text().splitlines():
                rec = json.loads(line)
                if rec.get("request_id") == request_id:
                    return rec
        if time.monotonic() > deadline:
            raise AssertionError(f"no access-log record for {request_id}; portico log:\n{gateway.log()}")
        time.sleep(0.05)  # poll interval, bounded by the deadline above


def metrics(gateway):
    """The gateway's Prometheus text."""
    with urllib.request.urlopen(f"http://127.0.0.1:{gateway.admin_port}/metrics", timeout=10) as r:
        return r.read().decode()
