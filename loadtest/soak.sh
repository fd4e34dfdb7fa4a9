#!/usr/bin/env bash
# Soak: load for DURATION while sampling the gateway's RSS and open fds.
#   loadtest/soak.sh URL PID [DURATION_S=600] [INTERVAL_S=10]
# Prints one line per sample: seconds, rss_kib, fds. The verdict compares the
# last sample's RSS with the one after warm-up (the first third).
set -euo pipefail
url=${1:?usage: soak.sh URL PID [duration_s] [interval_s]}
pid=${2:?PID}
duration=${3:-600}
interval=${4:-10}
wrk -t2 -c50 -d"${duration}s" "$url" >/dev/null 2>&1 &
load=$!
echo "seconds rss_kib fds"
samples=()
for ((t = 0; t <= duration; t += interval)); do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  echo "$t $rss $fds"
  samples+=("$rss")
  sleep "$interval"
done
wait "$load" || true
warm=${samples[$(( ${#samples[@]} / 3 ))]}
last=${samples[-1]}
echo "rss after warm-up ${warm} KiB, at end ${last} KiB"
