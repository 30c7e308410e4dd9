#!/usr/bin/env bash
# Figures of the phone page (`make bench-page`): one jamzd with the page on the loopback,
# headless Chromium logging in and timing `jamz toggle` → the page showing it (WebSocket push),
# the page's load time and size, and upload throughput with curl (1 MB and ~40 MB MP3s, hash,
# probe and import included). Figures only: nothing here passes or fails on a time.
#   usage: scripts/page-bench.sh [BIN_DIR] [FIXTURES]   (default .build/release, .build/fixtures)
set -euo pipefail
BIN=${1:-.build/release}
FIX=${2:-.build/fixtures}
ROUNDS=${ROUNDS:-20}
D=$(mktemp -d)
PORT=18$((RANDOM % 900 + 100))
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
"$BIN/jamzd" --data-dir "$D/data" --socket "$D/s" --output file:/dev/null --gpsd off --convoy-port 0 \
  --page-listen 127.0.0.1:$PORT --page-pin 424242 --page-max-upload-mb 200 2>"$D/log" &
PID=$!
for _ in $(seq 50); do "$BIN/jamz" --socket "$D/s" status >/dev/null 2>&1 && break; sleep 0.1; done
mkdir "$D/m" && cp "$FIX/cbr.mp3" "$FIX/vbr.mp3" "$D/m/"
"$BIN/jamz" --socket "$D/s" import "$D/m" >/dev/null
/usr/bin/python3 scripts/page-browser.py "http://127.0.0.1:$PORT/" 424242 "$BIN/jamz" "$D/s" "$D/shots" --rounds "$ROUNDS" \
  | grep -E "page load|toggle"
curl -s -c "$D/jar" -H 'Content-Type: application/json' --data '{"pin":"424242"}' "http://127.0.0.1:$PORT/api/login" >/dev/null
for _ in $(seq 40); do cat "$FIX/long65.mp3"; done > "$D/big.mp3"
for f in "$FIX/long65.mp3" "$D/big.mp3"; do
  for r in 1 2 3; do
    # A distinct file each time (a duplicate is not imported again).
    cp "$f" "$D/u.mp3"; printf 'x%s' "$r$RANDOM" >> "$D/u.mp3"
    curl -s -b "$D/jar" -o /dev/null -w "upload $(basename "$f"): HTTP %{http_code}, %{size_upload} B in %{time_total} s = %{speed_upload} B/s\n" \
      -H 'Content-Type: audio/mpeg' --data-binary @"$D/u.mp3" "http://127.0.0.1:$PORT/api/upload"
  done
done
