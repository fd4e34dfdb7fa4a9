# Portico: `make run` builds and serves conf/portico.yaml; `make test` runs every check.
# Both install what is missing first (`make deps`).

CARGO ?= cargo
CONFIG ?= conf/portico.yaml
BIN := target/release/portico
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build run test fmt lint clean

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
	$(CARGO) build --release

# Serves $(CONFIG); the default config proxies /demo/ to a small static upstream
# on 127.0.0.1:9000 that this target starts and stops with Portico.
run: build
	@python3 -m http.server 9000 --bind 127.0.0.1 --directory conf/demo >/dev/null 2>&1 & \
	demo=$$!; trap 'kill $$demo 2>/dev/null' EXIT INT TERM; \
	echo "demo upstream on 127.0.0.1:9000 (pid $$demo)"; \
	$(BIN) check -c $(CONFIG) && $(BIN) run -c $(CONFIG)

test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test -- --test-threads 2

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
