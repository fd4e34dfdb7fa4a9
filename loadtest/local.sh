#!/usr/bin/env bash
# `make loadtest`: a local nginx upstream, a local Portico, then every script
# against them with short durations. Exits non-zero if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PORTICO:-target/release/portico}
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; nginx -p "$work" -c nginx.conf -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen 127.0.0.1:18080; location / { return 200 "hello world\n"; } }
}
NGINX
nginx -p "$work" -c nginx.conf
cat >"$work/portico.yaml" <<YAML
server:
  listeners: [{address: 127.0.0.1:18000}]
  threads: 2
  admin: 127.0.0.1:18001
  grace_period: 2s
  graceful_shutdown_timeout: 3s
  access_log: {path: $work/access.log}
  pid_file: $work/portico.pid
  upgrade_sock: $work/upgrade.sock
upstreams:
  nginx: {targets: [{address: 127.0.0.1:18080}]}
routes:
  - {name: all, upstream: nginx}
YAML
"$bin" run -c "$work/portico.yaml" >"$work/portico.log" 2>&1 &
for _ in $(seq 100); do curl -fs http://127.0.0.1:18000/ >/dev/null && break; sleep 0.1; done
url=http://127.0.0.1:18000/
PATHS=/,/a,/b loadtest/wrk.sh "$url" 5s 50
if command -v oha >/dev/null; then loadtest/oha.sh "$url" 5s 50; else echo "oha not installed: skipped (make loadtest installs it)"; fi
PORTICO=$bin loadtest/under-load.sh reload "$url" "$work/portico.yaml" 5
PORTICO=$bin loadtest/under-load.sh upgrade "$url" "$work/portico.yaml" 2
loadtest/soak.sh "$url" "$(cat "$work/portico.pid")" 20 5
