#!/usr/bin/env bash
# make-demo-library.sh OUTDIR [COUNT]
#
# Synthesises a small "Convoy Demo" playlist of COUNT (default 6) pleasant
# instrumental tracks (20-40 s each, 44.1 kHz stereo, lame -V 2) for demos and
# manual testing of the head-unit daemon.  Each track is an arpeggio over a
# chord progression (sox pluck/sine/triangle notes concatenated) on top of a
# sine pad + bass, with reverb.  Tracks differ in tempo, metre, progression,
# arpeggio pattern and lead sound.  COUNT > 6 cycles through the six designs,
# transposed up a whole tone and slightly faster each time round.
#
# Tags (ID3v2.3, UTF-16 text, written by mutagen): title "Demo N — Name",
# artist "TrafficJamz Synth", album "Convoy Demo", track "N" (no total, so
# tracks kept from a run with a different COUNT stay consistent).
# Also writes OUTDIR/playlist.m3u.
#
# Deterministic (sox -R -D, fixed parameters) and idempotent: tracks whose
# file already exists are skipped; FORCE=1 regenerates everything.
#
# Requires: sox, lame, python3 with mutagen
#   (Debian: apt-get install -y sox lame python3-mutagen)
set -euo pipefail
export LC_ALL=C.UTF-8

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 OUTDIR [COUNT]" >&2
    exit 2
fi
OUTDIR=$1
COUNT=${2:-6}
if ! [[ $COUNT =~ ^[1-9][0-9]*$ ]]; then
    echo "error: COUNT must be a positive integer" >&2
    exit 2
fi

# shellcheck source=scripts/lib-audio-tools.sh
source "$(dirname "$0")/lib-audio-tools.sh"
require_tools sox lame

# name | bpm | beats per bar | lead wave | arpeggio pattern (eighth notes,
# indices into chord tones: 0 root, 1 third, 2 fifth, 3 octave, 4 third+8va)
# | chord progression (one chord per bar, repeated) | bars | extra sox effects
DESIGNS=(
    "Sunrise Drive|104|4|pluck|0 1 2 3 4 3 2 1|C G Am F|12|"
    "Night Highway|84|4|sine|0 2 1 3 2 4 3 2|Am F C G|10|chorus 0.6 0.9 50 0.4 0.25 2 -t"
    "Traffic Light Waltz|138|3|pluck|0 2 3 2 4 2|D G A D|20|"
    "Rain on the Windshield|72|4|triangle|3 2 1 0 1 2 3 4|Em C G D|8|tremolo 4 20"
    "Overpass Echo|116|4|pluck|0 1 2 1 3 2 4 2|F Dm Bb C|14|echo 0.8 0.7 388 0.3"
    "Last Exit Home|92|4|sine|0 2 4 2 3 2 1 2|G Em C D|12|"
)

# Root of each chord name, in semitones relative to A4 = 440 Hz (sox "%N").
declare -A ROOT=([F]=-16 [Gb]=-15 [G]=-14 [Ab]=-13 [A]=-12 [Bb]=-11 [B]=-10
                 [C]=-9 [Db]=-8 [D]=-7 [Eb]=-6 [E]=-5)

RATE=44100
SOX=(sox -R -D)          # repeatable RNG, no dither -> deterministic output

mkdir -p "$OUTDIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tj-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

slug() { tr '[:upper:]' '[:lower:]' <<<"$1" | tr -cs 'a-z0-9' '-' | sed 's/-$//'; }

# chord_tones CHORD TRANSPOSE -> "root third fifth octave third+12"
chord_tones() {
    local c=$1 tr=$2 name q r third
    if [[ $c == *m ]]; then name=${c%m}; q=min; else name=$c; q=maj; fi
    r=$(( ${ROOT[$name]} + tr ))
    if [[ $q == min ]]; then third=3; else third=4; fi
    echo "$r $((r + third)) $((r + 7)) $((r + 12)) $((r + third + 12))"
}

make_track() { # INDEX -> writes $OUTDIR/NN-slug.mp3
    local i=$1
    local d=$(( (i - 1) % ${#DESIGNS[@]} )) cycle=$(( (i - 1) / ${#DESIGNS[@]} ))
    local name bpm beats wave pattern prog bars fx
    IFS='|' read -r name bpm beats wave pattern prog bars fx <<<"${DESIGNS[$d]}"
    local tr=$(( cycle * 2 ))
    bpm=$(( bpm + cycle * 6 ))
    if (( cycle > 0 )); then name="$name (Reprise $((cycle + 1)))"; fi
    local file out t
    file=$(printf '%02d-%s.mp3' "$i" "$(slug "$name")")
    out=$OUTDIR/$file
    printf '%s\n' "$file" >>"$WORK/playlist"
    if [[ ${FORCE:-0} != 1 && -s $out ]]; then
        echo "skip  $file (exists)"
        return
    fi
    t=$WORK/t$i
    mkdir -p "$t"

    # Durations with sample-exact lengths so concatenations line up.
    local eighth_s bar_s
    eighth_s=$(( RATE * 30 / bpm ))          # samples per eighth note
    bar_s=$(( eighth_s * beats * 2 ))        # samples per bar

    local -a chords pat arp_files pad_files tones
    read -r -a chords <<<"$prog"
    read -r -a pat <<<"$pattern"
    arp_files=()
    pad_files=()
    local bar c ch n
    for (( bar = 0; bar < bars; bar++ )); do
        c=${chords[$(( bar % ${#chords[@]} ))]}
        read -r -a tones <<<"$(chord_tones "$c" "$tr")"
        # Arpeggio notes (one file per distinct pitch, reused).
        local step=0
        for (( step = 0; step < beats * 2; step++ )); do
            n=${tones[${pat[$(( step % ${#pat[@]} ))]}]}
            if [[ ! -f $t/n$n.wav ]]; then
                case $wave in
                    pluck) "${SOX[@]}" -r $RATE -c 1 -n -b 16 "$t/n$n.wav" \
                               synth "${eighth_s}s" pluck "%$n" fade 0 "${eighth_s}s" 0.03 vol 0.7 ;;
                    *)     "${SOX[@]}" -r $RATE -c 1 -n -b 16 "$t/n$n.wav" \
                               synth "${eighth_s}s" "$wave" "%$n" fade q 0.01 "${eighth_s}s" 0.12 vol 0.45 ;;
                esac
            fi
            arp_files+=("$t/n$n.wav")
        done
        # Pad: chord an octave down + bass two octaves down, swelling per bar.
        ch=$c
        if [[ ! -f $t/pad_$ch.wav ]]; then
            "${SOX[@]}" -r $RATE -c 4 -n -c 1 -b 16 "$t/pad_$ch.wav" \
                synth "${bar_s}s" sine "%$(( tones[0] - 24 ))" sine "%$(( tones[0] - 12 ))" \
                                  sine "%$(( tones[1] - 12 ))" sine "%$(( tones[2] - 12 ))" \
                fade h 0.25 "${bar_s}s" 0.3 vol 0.5
        fi
        pad_files+=("$t/pad_$ch.wav")
    done
    "${SOX[@]}" "${arp_files[@]}" "$t/arp.wav"
    "${SOX[@]}" "${pad_files[@]}" "$t/pad.wav"

    # Arp leans left, pad leans right; reverb tail, effects, normalise, fade.
    local total_s=$(( bar_s * bars + RATE * 2 ))
    # shellcheck disable=SC2086  # $fx is a deliberate word list of effects
    "${SOX[@]}" -M "$t/arp.wav" "$t/pad.wav" -b 16 "$t/mix.wav" \
        remix 1v0.75,2v0.35 1v0.4,2v0.7 pad 0 2 $fx reverb 40 50 70 \
        gain -n -1.5 fade 0.02 "${total_s}s" 2.5
    lame --quiet --nohist -V 2 "$t/mix.wav" "$t/out.mp3"

    "$PY" - "$t/out.mp3" "Demo $i — $name" "$i" <<'PYEOF'
import sys
from mutagen.id3 import ID3, TIT2, TPE1, TALB, TRCK, TCON, Encoding
path, title, track = sys.argv[1:4]
tag = ID3()
tag.add(TIT2(encoding=Encoding.UTF16, text=[title]))
tag.add(TPE1(encoding=Encoding.UTF16, text=["TrafficJamz Synth"]))
tag.add(TALB(encoding=Encoding.UTF16, text=["Convoy Demo"]))
tag.add(TRCK(encoding=Encoding.LATIN1, text=[track]))
tag.add(TCON(encoding=Encoding.LATIN1, text=["Electronic"]))
tag.save(path, v1=0, v2_version=3, padding=lambda info: 512)
PYEOF
    mv -f "$t/out.mp3" "$out"
    rm -rf "$t"
    echo "wrote $file ($(awk "BEGIN{printf \"%.1f\", $total_s/$RATE}") s, $bpm bpm, $prog)"
}

# Up to 2 tracks at a time (machines have >= 2 cores); output is identical
# whatever the scheduling because every track is self-contained.
pids=()
for (( i = 1; i <= COUNT; i++ )); do
    make_track "$i" &
    pids+=($!)
    if (( ${#pids[@]} >= 2 )); then
        wait "${pids[0]}"
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p"; done

# Playlist in track order (each job appended its name; sort restores order).
sort -n "$WORK/playlist" >"$OUTDIR/playlist.m3u.tmp.$$"
mv -f "$OUTDIR/playlist.m3u.tmp.$$" "$OUTDIR/playlist.m3u"
echo "demo library: $COUNT tracks in $OUTDIR"
