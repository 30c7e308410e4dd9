#!/usr/bin/env bash
# The demo: one head unit on this machine playing a generated playlist, with live status.
# Plays through ALSA's default device when this machine has a sound card, otherwise through a
# paced file sink (/dev/null, released in real time by the daemon's clock), and says which.
# DEMO_SECONDS=N stops after N seconds (default: until Ctrl-C when run in a terminal, else 30).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release
DEMO=${DEMO_DIR:-$PWD/demo-data}
mkdir -p "$DEMO"

bash scripts/make-demo-library.sh "$DEMO/library" 6

if [ -e /proc/asound/cards ] && grep -q '^ *[0-9]' /proc/asound/cards 2>/dev/null; then
  OUTPUT=alsa:default
  echo "demo: sound card found: playing through ALSA's default device"
else
  OUTPUT=file:/dev/null
  echo "demo: this machine has no sound card: playing into a paced file sink (file:/dev/null, real-time by the daemon's clock)"
fi

SOCK="$DEMO/jamz.sock"
"$BIN/jamzd" --data-dir "$DEMO/data" --socket "$SOCK" --output "$OUTPUT" 2>"$DEMO/jamzd.log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; echo; echo "demo: jamzd stopped (log: $DEMO/jamzd.log)"' EXIT
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
J() { "$BIN/jamz" --socket "$SOCK" "$@"; }

J import "$DEMO/library"
if [ "$(J queue --json | grep -c '"index"')" = 0 ]; then J add convoy demo; fi
J queue
J play
echo "demo: control it from another terminal, e.g.  $BIN/jamz --socket $SOCK next | pause | volume 40 | seek 20"

if [ -n "${DEMO_SECONDS:-}" ]; then END=$((SECONDS + DEMO_SECONDS)); elif [ -t 1 ]; then END=0; else END=$((SECONDS + 30)); fi
while [ "$END" = 0 ] || [ $SECONDS -lt "$END" ]; do
  line=$(J status 2>&1 || true)
  if [ -t 1 ]; then printf '\r\033[K%s' "$line"; else echo "$line"; fi
  sleep 0.5
done
