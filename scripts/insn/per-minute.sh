#!/usr/bin/env bash
# scripts/insn/per-minute.sh [SECONDS] — jamzd's instructions per minute of playback, aarch64
# against x86_64 (make insn; as root for apt). For the Pi's CPU budget.
#
# No hardware counters in this VM (perf stat: <not supported>) and no arm64 CPU: both binaries
# run under QEMU's user-mode emulator (Debian 12's qemu-user, dynamic: the -static one has no
# plugins) with scripts/insn/insn-count.c, a plugin that counts every guest instruction
# executed in all threads. The same instrument on both architectures. Each binary runs twice,
# the same way: start, import the demo track (long65.mp3) and queue it, then SECONDS (60) of
#   idle: nothing playing        play: `jamz play`, the track playing into the file: sink
#                                      (/dev/null, paced in real time like a sound card)
# then SIGTERM. play − idle = the instructions of SECONDS of playback (decode with libmpg123,
# the renderer, position saves to SQLite twice a second, status), scaled to one minute.
# The binaries: the x86_64 jamzd of the image (release, static stdlib, Swift 6.3) and the
# cross-built aarch64 one (Swift 6.2.3, make arm64); C libraries from the host and from the
# arm64 sysroot (qemu -L), Debian 12 both. Out: .build/insn/result.json and a table.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/opt/swift/usr/bin"
SECS=${1:-60}
W=$PWD/.build/insn
SYSROOT=$PWD/.build/arm64/sdk/jamz-aarch64.artifactbundle/aarch64/sysroot
ARM=$PWD/.build/arm64/bin/jamzd
TRACK=$PWD/.build/fixtures/long65.mp3
[ -x "$ARM" ] || { echo "per-minute: no $ARM (make arm64)" >&2; exit 1; }
[ -f "$TRACK" ] || { echo "per-minute: no $TRACK (make fixtures)" >&2; exit 1; }
dpkg-query -W -f='${Status}' qemu-user 2>/dev/null | grep -q "install ok installed" || \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-user >/dev/null
swift build -c release --static-swift-stdlib --product jamzd 2>&1 | tail -1
swift build -c release --static-swift-stdlib --product jamz 2>&1 | tail -1
BIN=$(swift build -c release --static-swift-stdlib --show-bin-path)
rm -rf "$W"; mkdir -p "$W/music"
cp "$TRACK" "$W/music/"
gcc -O2 -shared -fPIC -Wall -o "$W/libinsncount.so" scripts/insn/insn-count.c

run() {  # run ARCH MODE → prints the instruction count
  local arch=$1 mode=$2 d=$W/$1-$2 q
  mkdir -p "$d"
  case $arch in
    aarch64) q=(qemu-aarch64 -L "$SYSROOT" -plugin "$W/libinsncount.so,out=$d/count" "$ARM") ;;
    x86_64) q=(qemu-x86_64 -plugin "$W/libinsncount.so,out=$d/count" "$BIN/jamzd") ;;
  esac
  "${q[@]}" --data-dir "$d/data" --socket "$d/sock" --output file:/dev/null --gpsd off --convoy-port 0 \
    --log-level notice > "$d/jamzd.log" 2>&1 &
  local pid=$! i
  for i in $(seq 300); do [ -S "$d/sock" ] && break; sleep 0.1; done
  "$BIN/jamz" import --socket "$d/sock" "$W/music" > /dev/null
  "$BIN/jamz" add --socket "$d/sock" long > /dev/null
  [ "$mode" = play ] && "$BIN/jamz" play --socket "$d/sock" > /dev/null
  sleep "$SECS"
  "$BIN/jamz" status --socket "$d/sock" > "$d/status.txt" 2>&1 || true
  kill -TERM "$pid"; wait "$pid" || true
  sed -n 's/^insns //p' "$d/count"
}
declare -A N
for arch in x86_64 aarch64; do
  for mode in idle play; do
    N[$arch-$mode]=$(run $arch $mode)
    echo "per-minute: $arch $mode: ${N[$arch-$mode]} instructions in ${SECS} s (then: $(head -1 "$W/$arch-$mode/status.txt" | cut -c1-60))"
  done
done
python3 - "$SECS" "${N[x86_64-idle]}" "${N[x86_64-play]}" "${N[aarch64-idle]}" "${N[aarch64-play]}" > "$W/result.json" <<'PY'
import json, sys
secs = float(sys.argv[1]); xi, xp, ai, ap = map(int, sys.argv[2:])
r = {"seconds": secs, "method": "qemu-user 7.2 + insn-count plugin, guest instructions, (play - idle) * 60 / seconds",
     "x86_64": {"idle": xi, "play": xp, "per_minute_of_playback": round((xp - xi) * 60 / secs)},
     "aarch64": {"idle": ai, "play": ap, "per_minute_of_playback": round((ap - ai) * 60 / secs)}}
r["aarch64_over_x86_64"] = round(r["aarch64"]["per_minute_of_playback"] / r["x86_64"]["per_minute_of_playback"], 3)
print(json.dumps(r, indent=1))
PY
cat "$W/result.json"
python3 -c "
import json; r = json.load(open('$W/result.json'))
for a in ('x86_64', 'aarch64'):
    m = r[a]['per_minute_of_playback']
    print(f'per-minute: {a}: {m/1e9:.2f} G instructions per minute of playback ({m/60e6:.1f} M/s)')
print(f'per-minute: aarch64 / x86_64 = {r[\"aarch64_over_x86_64\"]}')"
