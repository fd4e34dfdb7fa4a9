# Portico: `make run` builds and serves conf/portico.yaml; `make test` runs every check.
# Both install what is missing first (`make deps`).

CARGO ?= cargo
CONFIG ?= conf/portico.yaml
# `make run` serves in store mode: the store (SQLite) under STATE, filled
# from CONFIG the first time; RUN_CONFIG holds only the `server` section.
RUN_CONFIG ?= conf/portico-store.yaml
STATE ?= .portico
BIN := target/release/portico
# The debug binary the Python tests drive (cargo's target dir, if moved).
TEST_BIN := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/debug/portico
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: console-user screenshots deps test-deps bench-deps bench bench-ai bench-floor bench-calllog bench-peers bench-peers-deps bench-quick floor build run test fmt lint doc clean install uninstall verify-unit loadtest

PREFIX ?= /usr/local
DESTDIR ?=

deps:
	@missing=""; \
	command -v cmake >/dev/null 2>&1 || missing="$$missing cmake"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing build-essential"; \
	command -v python3 >/dev/null 2>&1 || missing="$$missing python3"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v $(CARGO) >/dev/null 2>&1 || { echo "cargo is required: install Rust from rustup.rs"; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

build: deps
	env -u DESTDIR $(CARGO) build --release

# Serves in store mode ($(RUN_CONFIG): the store under .portico/, filled from
# $(CONFIG) on first run); the default config proxies /demo/ to a small static upstream
# on 127.0.0.1:9000 that this target starts and stops with Portico.
run: build
	@python3 -m http.server 9000 --bind 127.0.0.1 --directory conf/demo >/dev/null 2>&1 & \
	demo=$$!; trap 'kill $$demo 2>/dev/null' EXIT INT TERM; \
	echo "demo upstream on 127.0.0.1:9000 (pid $$demo)"; \
	mkdir -p $(STATE); \
	if [ ! -f $(STATE)/store.db ]; then $(BIN) import $(CONFIG) --store sqlite://$(STATE)/store.db --actor make-run || exit 1; fi; \
	echo "admin API on http://127.0.0.1:9901/admin/v1 (token in $(STATE)/state/admin-token)"; \
	$(MAKE) --no-print-directory console-user & \
	$(BIN) check -c $(RUN_CONFIG) && $(BIN) run -c $(RUN_CONFIG)

# The console's first user, once: `admin` with a random password written to
# $(STATE)/console-password, made through the admin API when the gateway is up.
console-user:
	@for i in $$(seq 100); do curl -sf http://127.0.0.1:9901/readyz >/dev/null && break; sleep 0.2; done; \
	if [ ! -s $(STATE)/console-password ]; then \
		pw=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))'); \
		printf '{"role": "admin", "password": "%s"}' "$$pw" | $(BIN) admin -c $(RUN_CONFIG) put user admin - >/dev/null && \
		(umask 077; echo "$$pw" > $(STATE)/console-password); \
	fi; \
	echo "console: http://127.0.0.1:9901/console (user admin, password in $(STATE)/console-password); portal: /portal"

# Tests start a real redis-server (Debian's) for the cluster-wide rate limits and a
# real PostgreSQL (Debian's, initdb + pg_ctl on a temporary directory) for the store;
# property tests run a bounded number of cases; the AI end-to-end tests use the
# official openai SDK (PyPI, in .venv-ai) against mock providers; last, schemathesis
# (PyPI, in .venv-admin) calls every operation of the admin API's OpenAPI document
# against a seeded gateway in store mode (tests/admin, bounded and seeded); the
# console's browser tests (Playwright from PyPI in .venv-console, driving Debian's
# chromium; tests/console); and the MCP tests with the
# official MCP Python SDK (PyPI, in .venv-mcp) as the client (tests/mcp).
# Gates first (docs/ARCHITECTURE.md, "Gates"): the tree's layers and file
# sizes, formatting, clippy with the [lints] table, and the docs with every
# intra-doc link resolved.
test: deps verify-unit test-deps
	python3 tools/check_tree.py
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --document-private-items
	PROPTEST_CASES=$${PROPTEST_CASES:-256} $(CARGO) test -- --test-threads 2
	PORTICO_BIN=$(TEST_BIN) .venv-ai/bin/python -m unittest discover -s tests/ai -v
	PORTICO_BIN=$(TEST_BIN) .venv-admin/bin/python -m pytest tests/admin -v -s -p no:cacheprovider
	PORTICO_BIN=$(TEST_BIN) .venv-console/bin/python -m pytest tests/console -v -p no:cacheprovider
	PORTICO_BIN=$(TEST_BIN) .venv-mcp/bin/python -m pytest tests/mcp -v -p no:cacheprovider

test-deps:
	@command -v redis-server >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
	@python3 -c "import venv, ensurepip" 2>/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	@[ -x .venv-ai/bin/python ] || python3 -m venv .venv-ai
	@.venv-ai/bin/python -c "import openai, anthropic" 2>/dev/null || .venv-ai/bin/pip install -q -r tests/ai/requirements.txt
	@[ -x .venv-admin/bin/python ] || python3 -m venv .venv-admin
	@.venv-admin/bin/pip install -q --disable-pip-version-check -r tests/admin/requirements.txt
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@[ -x .venv-console/bin/python ] || python3 -m venv .venv-console
	@.venv-console/bin/pip install -q --disable-pip-version-check -r tests/console/requirements.txt
	@[ -x .venv-mcp/bin/python ] || python3 -m venv .venv-mcp
	@.venv-mcp/bin/pip install -q --disable-pip-version-check -r tests/mcp/requirements.txt

# Screenshots of the console's and the portal's main pages (docs/screenshots,
# linked from the README), taken by the browser tests.
screenshots: deps test-deps
	$(CARGO) build
	PORTICO_BIN=$(TEST_BIN) PORTICO_SCREENSHOTS=docs/screenshots .venv-console/bin/python -m pytest tests/console -q -p no:cacheprovider -k whole_flow

# The side-by-side benchmark against nginx (bench/README.md), then the peers'
# table (bench/peers.py); knobs are env vars (ROUNDS, DURATION, SOAK,
# GATEWAY_CPUS, CLIENT_CPUS, ...).
bench: build bench-deps bench-peers-deps
	python3 bench/bench.py
	FLOOR_BIN=$(FLOOR_BIN) PINGAP_BIN=$(PINGAP_BIN) python3 bench/peers.py

# Portico beside nginx, HAProxy, Caddy, pingap and bare Pingora, plain and with
# the chain (bench/README.md, "Peers"); ROUNDS, DURATION, SIZES, PLAIN, CHAIN.
bench-peers: build bench-peers-deps
	FLOOR_BIN=$(FLOOR_BIN) PINGAP_BIN=$(PINGAP_BIN) python3 bench/peers.py

# Before and after a change: one round of 5 s at 12 B, plain and chain, Portico
# against nginx and bare Pingora; prints the ratios (bench/README.md, "Peers").
bench-quick: build bench-deps floor
	FLOOR_BIN=$(FLOOR_BIN) python3 bench/peers.py --quick

# The AI scenario: added latency and max rps, Portico beside LiteLLM's proxy.
bench-ai: build bench-deps
	@[ -x .venv-litellm/bin/litellm ] || { python3 -m venv .venv-litellm && .venv-litellm/bin/pip install -q 'litellm[proxy]'; }
	python3 bench/ai_bench.py

# Portico's plain proxy beside two reference proxies, bare tokio and bare
# Pingora (bench/floor; bench/TUNING.md, "The floor"). SIZE, ROUNDS, DURATION
# as in bench/ab.py.
bench-floor: build bench-deps floor
	python3 bench/ab.py floor=$(FLOOR_DIR)/floor pingora=$(FLOOR_BIN) portico=$(BIN)

# bench/floor's two proxies (a crate of its own, built in FLOOR_TARGET).
FLOOR_TARGET ?= $(CURDIR)/bench/floor/target
FLOOR_DIR = $(FLOOR_TARGET)/release
FLOOR_BIN = $(FLOOR_DIR)/pingora
floor:
	cd bench/floor && $(CARGO) build --release --target-dir $(FLOOR_TARGET)

# The call log: CPU it adds per request, the rate it sustains with no drops,
# and the admin API's analytics and log pages over 10 million rows
# (bench/README.md, "The call log"). ROUNDS, DURATION, SUSTAIN_RATE,
# SUSTAIN_DURATION, ROWS, PARTS as in bench/calllog_bench.py.
bench-calllog: build bench-deps
	python3 bench/calllog_bench.py

# The peers of bench/peers.py: HAProxy, Caddy (Debian's), pingap (crates.io, into
# bench/peers/.pingap when missing; it needs protoc) and bare Pingora.
PINGAP_BIN = $(CURDIR)/bench/peers/.pingap/bin/pingap
bench-peers-deps: bench-deps floor
	@missing=""; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v caddy >/dev/null 2>&1 || missing="$$missing caddy"; \
	command -v protoc >/dev/null 2>&1 || missing="$$missing protobuf-compiler"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@[ -x $(PINGAP_BIN) ] || $(CARGO) install pingap --version 0.13.1 --locked --root $(CURDIR)/bench/peers/.pingap

bench-deps:
	@missing=""; \
	command -v nginx >/dev/null 2>&1 || missing="$$missing nginx-light"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v taskset >/dev/null 2>&1 || missing="$$missing util-linux"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v oha >/dev/null 2>&1 || $(CARGO) install oha --locked

# systemd-analyze checks the unit's syntax and directives (Debian's systemd package).
verify-unit:
	@command -v systemd-analyze >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; }
	@tmp=$$(mktemp -d); sed 's|/usr/local/bin/portico|/bin/true|g' systemd/portico.service > $$tmp/portico.service; \
	SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no $$tmp/portico.service 2>&1 | grep -v -e "Failed to create /init.scope" -e "Cannot check for" | tee $$tmp/out; \
	if grep -q "portico.service" $$tmp/out; then echo "systemd unit has problems"; rm -rf $$tmp; exit 1; fi; \
	rm -rf $$tmp; echo "systemd/portico.service: ok"

# Installs the binary, the unit, the user, logrotate and /etc/portico/portico.yaml
# (an existing config is never overwritten).
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/portico
	install -D -m 0644 systemd/portico.service $(DESTDIR)/etc/systemd/system/portico.service
	install -D -m 0644 systemd/portico.sysusers $(DESTDIR)/usr/lib/sysusers.d/portico.conf
	install -D -m 0644 systemd/portico.logrotate $(DESTDIR)/etc/logrotate.d/portico
	@if [ -e $(DESTDIR)/etc/portico/portico.yaml ]; then \
		echo "keeping existing /etc/portico/portico.yaml"; \
	else \
		install -d $(DESTDIR)/etc/portico; \
		sed '/^server:/a\  pid_file: /run/portico/portico.pid\n  upgrade_sock: /run/portico/upgrade.sock' \
			conf/portico.yaml > $(DESTDIR)/etc/portico/portico.yaml; \
		chmod 0644 $(DESTDIR)/etc/portico/portico.yaml; \
	fi
	@if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null 2>&1; then \
		systemd-sysusers 2>/dev/null || id portico >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin portico; \
		systemctl daemon-reload 2>/dev/null || true; \
		echo "installed: systemctl enable --now portico"; \
	fi

uninstall:
	-@[ -z "$(DESTDIR)" ] && systemctl disable --now portico 2>/dev/null || true
	rm -f $(DESTDIR)$(PREFIX)/bin/portico $(DESTDIR)/etc/systemd/system/portico.service \
		$(DESTDIR)/usr/lib/sysusers.d/portico.conf $(DESTDIR)/etc/logrotate.d/portico
	-@[ -z "$(DESTDIR)" ] && systemctl daemon-reload 2>/dev/null || true
	@echo "kept /etc/portico (your config) and /var/log/portico"

# wrk (Debian) and oha (crates.io) are installed when missing.
loadtest: build
	@command -v wrk >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light; }
	@command -v oha >/dev/null 2>&1 || $(CARGO) install oha --locked
	PORTICO=$(BIN) loadtest/local.sh

fmt:
	$(CARGO) fmt --all

# The code's map (docs/ARCHITECTURE.md) is the crate's front page.
doc:
	$(CARGO) doc --no-deps --document-private-items --open

clean:
	$(CARGO) clean
