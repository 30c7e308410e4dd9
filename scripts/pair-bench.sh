#!/usr/bin/env bash
# Figures of the joins without typing (`make bench-pair`, root: two jamzd as separate hosts in
# network namespaces, scripts/netns.sh): per round, fresh cars, car 1 makes a convoy, then
#   - short code: `jamz group invite` on car 1, `jamz group join CODE` on car 2 (the CLI's round trip);
#   - push button: the join button on car 2 then car 1 → car 1 (the host) says the check words and
#     waits for its driver; its second press → car 2 is in the convoy.
# Times are wall-clock around the `jamz` commands and a 5 ms poll of `jamz group show --json`,
# so they include the CLI's start-up. Figures only: nothing here passes or fails on a time.
#   usage: scripts/pair-bench.sh [BIN_DIR]   (default .build/release; ROUNDS=5)
set -euo pipefail
BIN=$(cd "${1:-.build/release}" && pwd)
ROUNDS=${ROUNDS:-5}
cd "$(dirname "$0")/.."
D=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; bash scripts/netns.sh down >/dev/null 2>&1 || true; rm -rf "$D"; }
trap cleanup EXIT
bash scripts/netns.sh up 2
ms() { echo $(( $(date +%s%N) / 1000000 )); }
j() { local i=$1; shift; "$BIN/jamz" --socket "$D/r$ROUND/s$i" "$@"; }
# Waits (5 ms polls, 20 s at most) until `jamz group show --json` on car $1 matches the regex $2.
until_show() { for _ in $(seq 4000); do j "$1" group show --json 2>/dev/null | grep -Eq "$2" && return 0; sleep 0.005; done; echo "timed out: car $1 $2" >&2; return 1; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
: >"$D/code"; : >"$D/words"; : >"$D/confirm"
for ROUND in $(seq "$ROUNDS"); do
  mkdir -p "$D/r$ROUND"
  for i in 1 2; do
    ip netns exec jamz-car$i "$BIN/jamzd" --data-dir "$D/r$ROUND/d$i" --socket "$D/r$ROUND/s$i" --output file:/dev/null \
      --gpsd off --car-name car$i 2>"$D/r$ROUND/log$i" &
    PIDS+=($!)
  done
  for i in 1 2; do for _ in $(seq 100); do j $i status >/dev/null 2>&1 && break; sleep 0.1; done; done
  j 1 group create Bench >/dev/null
  code=$(j 1 group invite | grep -o 'group join [0-9]*' | grep -o '[0-9]*$')
  t0=$(ms); j 2 group join "$code" >/dev/null; t1=$(ms)
  echo $((t1 - t0)) >>"$D/code"
  j 2 group leave >/dev/null
  sleep 1
  t0=$(ms); j 2 group button >/dev/null; j 1 group button >/dev/null
  until_show 1 '"pairing" : "[^"]*press join again'; t1=$(ms)
  j 1 group button >/dev/null
  until_show 2 '"inGroup" : true'; t2=$(ms)
  echo $((t1 - t0)) >>"$D/words"; echo $((t2 - t1)) >>"$D/confirm"
  echo "round $ROUND: short code join $(tail -1 "$D/code") ms; both buttons → words spoken $(tail -1 "$D/words") ms; second press → joined $(tail -1 "$D/confirm") ms"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
done
for f in code words confirm; do
  printf '%-8s median %s ms, min %s, max %s (%s rounds)\n' "$f" "$(median <"$D/$f")" "$(sort -n "$D/$f" | head -1)" "$(sort -n "$D/$f" | tail -1)" "$ROUNDS"
done
