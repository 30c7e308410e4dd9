#!/usr/bin/env bash
# The demo: a small convoy of head units on this machine playing a generated playlist, with
# live status. As root (with iproute2), three jamzd run as separate hosts in network namespaces
# (scripts/netns.sh), each with its own skewed clock; car 1 has the music, cars 2 and 3 copy
# the tracks from it and play in sync. Without root, one head unit plays alone.
# Car 1 plays through ALSA's default device when this machine has a sound card, otherwise
# through a paced file sink (/dev/null, released in real time by the daemon's clock); the
# others always play into paced file sinks. It says which.
# DEMO_SECONDS=N stops after N seconds (default: until Ctrl-C when run in a terminal, else 30).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/.build/release
DEMO=${DEMO_DIR:-$PWD/demo-data}
mkdir -p "$DEMO"

bash scripts/make-demo-library.sh "$DEMO/library" 6
bash scripts/make-prompts.sh "$DEMO/prompts"   # the spoken prompts ("you are the DJ", "joined the convoy", ...)

if [ -e /proc/asound/cards ] && grep -q '^ *[0-9]' /proc/asound/cards 2>/dev/null; then
  OUTPUT=alsa:default
  echo "demo: sound card found: car 1 plays through ALSA's default device"
else
  OUTPUT=file:/dev/null
  echo "demo: this machine has no sound card: car 1 plays into a paced file sink (file:/dev/null, real-time by the daemon's clock)"
fi

CARS=1
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && bash scripts/netns.sh up 3 2>/dev/null; then
  CARS=3
  echo "demo: a convoy of 3 head units, each in its own network namespace (10.77.0.1-3), clocks 1 s apart and ±40 ppm"
else
  echo "demo: not root (or no iproute2): one head unit, playing alone"
fi

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "$CARS" = 3 ] && bash scripts/netns.sh down 2>/dev/null || true
  echo; echo "demo: stopped (logs: $DEMO/car*/jamzd.log)"
}
trap cleanup EXIT

for i in $(seq 1 "$CARS"); do
  d="$DEMO/car$i"; mkdir -p "$d"
  out=$OUTPUT; [ "$i" -gt 1 ] && out=file:/dev/null
  rm -f "$d/jamz.sock"
  cmd=("$BIN/jamzd" --data-dir "$d/data" --socket "$d/jamz.sock" --output "$out" --car-name "car$i" --gpsd off --prompts-dir "$DEMO/prompts")   # no GPS receiver on this machine
  if [ "$CARS" = 3 ]; then
    cmd=(ip netns exec "jamz-car$i" "${cmd[@]}" "--clock-offset-ms=$((i * 1000 - 1000))" "--clock-drift-ppm=$(( (i - 1) * 40 - 40 ))")
  fi
  "${cmd[@]}" 2>"$d/jamzd.log" &
  PIDS+=($!)
done
J() { local i=$1; shift; "$BIN/jamz" --socket "$DEMO/car$i/jamz.sock" "$@"; }
for i in $(seq 1 "$CARS"); do
  for _ in $(seq 100); do [ -S "$DEMO/car$i/jamz.sock" ] && break; sleep 0.1; done
done

J 1 import "$DEMO/library"
if [ "$CARS" = 3 ]; then
  CODE=$(J 1 group create "demo convoy" --json | sed -n 's/.*"code" *: *"\([^"]*\)".*/\1/p')
  echo "demo: car 1 made the convoy; join code $CODE"
  J 2 group join "$CODE"; J 3 group join "$CODE"
  for _ in $(seq 50); do [ "$(J 1 peers --json | grep -c '"member"')" = 2 ] && break; sleep 0.2; done
  J 1 peers
fi
if [ "$(J 1 queue --json | grep -c '"index"')" = 0 ]; then J 1 add convoy demo; fi
J 1 queue
J 1 play
echo "demo: control it from another terminal, e.g.  $BIN/jamz --socket $DEMO/car1/jamz.sock next | pause | seek 20"
[ "$CARS" = 3 ] && echo "      take control from car 2:  $BIN/jamz --socket $DEMO/car2/jamz.sock take-control"

if [ -n "${DEMO_SECONDS:-}" ]; then END=$((SECONDS + DEMO_SECONDS)); elif [ -t 1 ]; then END=0; else END=$((SECONDS + 30)); fi
first=1
while [ "$END" = 0 ] || [ $SECONDS -lt "$END" ]; do
  lines=()
  for i in $(seq 1 "$CARS"); do lines+=("car $i: $(J "$i" status 2>&1 || true)"); done
  if [ -t 1 ]; then
    [ $first = 0 ] && printf '\033[%dA' "$CARS"
    for l in "${lines[@]}"; do printf '\r\033[K%s\n' "$l"; done
  else
    printf '%s\n' "${lines[@]}"
  fi
  first=0
  sleep 0.5
done
