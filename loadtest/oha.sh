#!/usr/bin/env bash
# Load with oha: loadtest/oha.sh URL [DURATION=30s] [CONNECTIONS=50]
set -euo pipefail
url=${1:?usage: oha.sh URL [duration] [connections]}
args=(-z "${2:-30s}" -c "${3:-50}" --no-tui)
[ -n "${API_KEY:-}" ] && args+=(-H "X-API-Key: $API_KEY")
exec oha "${args[@]}" "$url"
