#!/usr/bin/env bash
# The 8-core run of issue 5: gateway on 8 cores with 8 worker threads (nginx: 8
# workers), upstream nginx and wrk/oha on the other 8. Needs a machine with at
# least 16 CPUs. Results land in bench/results/ like any other run.
set -euo pipefail
cd "$(dirname "$0")/.."
cpus=$(nproc)
if [ "$cpus" -lt 16 ]; then echo "needs 16 CPUs, this machine has $cpus" >&2; exit 1; fi
export GATEWAY_CPUS=${GATEWAY_CPUS:-0-7} CLIENT_CPUS=${CLIENT_CPUS:-8-15} THREADS=${THREADS:-8}
export CLIENT_THREADS=${CLIENT_THREADS:-4} UPSTREAM_WORKERS=${UPSTREAM_WORKERS:-4} CONNECTIONS=${CONNECTIONS:-400}
# nginx keeps 256 idle upstream connections per worker (8 x 256); Portico's pool
# is one, shared by its threads: give it the same 2048.
export PORTICO_SERVER_EXTRA=${PORTICO_SERVER_EXTRA:-"  upstream_keepalive_pool_size: 2048"}
export SOAK=${SOAK:-0} IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-0} ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10}
# Latency at the 8-core target rate (100k rps for the full chain).
export RATE=${RATE:-100000}
export MACHINE=${MACHINE:-"$(hostname), $cpus CPUs"}
[ -x target/release/portico ] || cargo build --release
exec python3 bench/bench.py "$@"
