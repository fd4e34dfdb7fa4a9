#!/usr/bin/env bash
# Load with wrk: loadtest/wrk.sh URL [DURATION=30s] [CONNECTIONS=50] [THREADS=2]
# Uses mixed.lua (API_KEY and PATHS environment variables).
set -euo pipefail
url=${1:?usage: wrk.sh URL [duration] [connections] [threads]}
exec wrk -t"${4:-2}" -c"${3:-50}" -d"${2:-30s}" --latency -s "$(dirname "$0")/mixed.lua" "$url"
