#!/usr/bin/env bash
# Reloads or upgrades under load, and a verdict:
#   loadtest/under-load.sh reload  URL CONFIG [N=10]
#   loadtest/under-load.sh upgrade URL CONFIG [N=2]
# Runs wrk for the whole sequence, performs N reloads (`portico reload`) or
# binary upgrades (`portico upgrade`), then prints the non-2xx and socket-error
# counts and exits non-zero if either is above zero.
set -euo pipefail
mode=${1:?usage: under-load.sh reload|upgrade URL CONFIG [N]}
url=${2:?URL}
config=${3:?CONFIG}
portico=${PORTICO:-portico}
case "$mode" in
  reload) n=${4:-10}; pause=1 ;;
  upgrade) n=${4:-2}; pause=8 ;;
  *) echo "mode must be reload or upgrade" >&2; exit 2 ;;
esac
duration=$(( n * pause + 6 ))
out=$(mktemp)
wrk -t2 -c20 -d"${duration}s" "$url" >"$out" 2>&1 &
load=$!
sleep 2
for i in $(seq 1 "$n"); do
  if [ "$mode" = reload ]; then "$portico" reload -c "$config"; else "$portico" upgrade -c "$config"; fi
  sleep "$pause"
done
wait "$load"
cat "$out"
non2xx=$(awk '/Non-2xx or 3xx responses/ {print $NF}' "$out"); non2xx=${non2xx:-0}
sockerr=$(awk '/Socket errors/ {gsub(",", ""); s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+$/) s+=$i; print s}' "$out"); sockerr=${sockerr:-0}
rm -f "$out"
echo "$mode x$n: non-2xx=$non2xx socket-errors=$sockerr"
[ "$non2xx" = 0 ] && [ "$sockerr" = 0 ]
