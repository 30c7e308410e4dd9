#!/usr/bin/env bash
# make-fixtures.sh OUTDIR
#
# Generates small, fully synthetic MP3 test fixtures (sox synthesis + lame
# encoding) for the libmpg123-based decoder/importer tests, plus
# OUTDIR/MANIFEST describing each file.
#
# Deterministic: sox runs in repeatable mode (-R) without dither (-D), lame
# output has no timestamps, pseudo-random bytes come from fixed seeds, and the
# ID3v2.4 tag is written by mutagen with fixed padding.  Two runs on the same
# machine produce byte-identical files.
#
# Idempotent: if OUTDIR/.fixtures-stamp matches this script + tool versions and
# every file is present, nothing is regenerated.  Set FORCE=1 to rebuild.
#
# Requires: sox, lame, mpg123, python3 with mutagen
#   (Debian: apt-get install -y sox lame mpg123 python3-mutagen)
set -euo pipefail
export LC_ALL=C.UTF-8

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUTDIR=$1
# The spoken prompts (issue 17): OUTDIR/prompts, for the renderer and daemon tests.
bash "$(dirname "${BASH_SOURCE[0]}")/make-prompts.sh" "$OUTDIR/prompts"

# shellcheck source=scripts/lib-audio-tools.sh
source "$(dirname "$0")/lib-audio-tools.sh"
require_tools sox lame mpg123 sha256sum

FILES=(
    cbr.mp3 vbr.mp3 noxing.mp3 id3v1.mp3 id3v24.mp3 mono22k.mp3 long65.mp3
    truncated.mp3 corrupt.mp3 notmp3.mp3 text.mp3 empty.mp3 cover.jpg
    nested/deeper/nested.mp3
)

SCRIPT_PATH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
STAMP_WANT="$(sha256sum "$SCRIPT_PATH" | cut -d' ' -f1) $(lame --version 2>/dev/null | head -n1) $(sox --version 2>/dev/null | head -n1) $(mpg123 --version 2>/dev/null | head -n1) mutagen-$("$PY" -c 'import mutagen; print(mutagen.version_string)')"

if [[ ${FORCE:-0} != 1 && -f $OUTDIR/.fixtures-stamp && -f $OUTDIR/MANIFEST ]] \
    && [[ "$(cat "$OUTDIR/.fixtures-stamp")" == "$STAMP_WANT" ]]; then
    missing=0
    for f in "${FILES[@]}"; do [[ -e $OUTDIR/$f ]] || missing=1; done
    if [[ $missing == 0 ]]; then
        echo "fixtures in $OUTDIR are up to date (FORCE=1 to rebuild)"
        exit 0
    fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tj-fixtures.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
W=$WORK/wav
O=$WORK/out
mkdir -p "$W" "$O/nested/deeper"

# synth OUT.wav RATE CHANNELS SYNTH-AND-EFFECT-ARGS...
# Rate/channels are given as *input* options of -n so sox synthesises at the
# target rate directly (otherwise it synthesises at 48 kHz and resamples,
# which smears the first samples).  -R = repeatable RNG, -D = no dither.
synth() {
    local out=$1 rate=$2 ch=$3
    shift 3
    sox -R -D -r "$rate" -c "$ch" -n -b 16 "$out" "$@"
}

LAME=(lame --quiet --nohist)

# ---------------------------------------------------------------- signals ---
# Every tone starts at phase 25% (cosine) so the very first sample is at peak
# (0.5 full scale): tests can assert decode output is non-silent immediately.
# Left/right use different pitches so channel swaps are detectable.
synth "$W/cbr.wav"     44100 2 synth 3   sine 440 0 25 sine 659.255 0 25 vol 0.5 fade 0 3 0.1
synth "$W/vbr.wav"     44100 2 synth 4   sine 220/880 0 25 sine 330/1320 0 25 vol 0.5 fade 0 4 0.1
synth "$W/noxing.wav"  44100 2 synth 3   sine 523.251 0 25 sine 392 0 25 vol 0.5 fade 0 3 0.1
synth "$W/id3v1.wav"   44100 2 synth 2   sine 600 0 25 sine 800 0 25 vol 0.5 fade 0 2 0.1
synth "$W/id3v24.wav"  44100 2 synth 2.5 sine 700 0 25 sine 350 0 25 vol 0.5 fade 0 2.5 0.1
synth "$W/mono22k.wav" 22050 1 synth 3   sine 1000 0 25 vol 0.5 fade 0 3 0.1
synth "$W/corrupt.wav" 44100 2 synth 4   sine 261.626 0 25 sine 329.628 0 25 vol 0.5 fade 0 4 0.1
synth "$W/nested.wav"  44100 2 synth 2   sine 880 0 25 sine 440 0 25 vol 0.5 fade 0 2 0.1
# long65: opposite exponential sweeps L/R with tremolo plus quiet pink noise,
# so content changes continuously and does not compress trivially.
synth "$W/sweep.wav"   44100 2 synth 65 sine 110/1760 0 25 sine 1760/110 0 25 tremolo 0.7 40 vol 0.45
synth "$W/noise.wav"   44100 2 synth 65 pinknoise pinknoise vol 0.05
sox -R -D -m "$W/sweep.wav" "$W/noise.wav" -b 16 "$W/long65.wav"

# --------------------------------------------------------------- encoding ---
# ID3v2.3 (+ v1) tags via lame; CBR 128k keeps the default LAME/Info tag.
"${LAME[@]}" --cbr -b 128 --add-id3v2 --tt "CBR Tone" --ta "Fixture Artist" --tl "Fixtures" \
    "$W/cbr.wav" "$O/cbr.mp3"
"${LAME[@]}" -V 4 --add-id3v2 --tt "VBR Tone" --ta "Fixture Artist" --tl "Fixtures" \
    "$W/vbr.wav" "$O/vbr.mp3"
# -t: no Xing/Info frame -> no gapless info, length needs a full scan.
"${LAME[@]}" -t --cbr -b 128 --add-id3v2 --tt "No Xing" --ta "Fixture Artist" --tl "Fixtures" \
    "$W/noxing.wav" "$O/noxing.mp3"
"${LAME[@]}" --cbr -b 128 --id3v1-only --tt "Only V1" --ta "Old Tagger" --tl "Legacy" \
    "$W/id3v1.wav" "$O/id3v1.mp3"
# No tag from lame; the ID3v2.4 tag is added by mutagen below.
"${LAME[@]}" --cbr -b 128 "$W/id3v24.wav" "$O/id3v24.mp3"
# 64 kbps on purpose: at <=48 kbps MPEG-2 mono frames are too small and lame
# silently drops the Info/LAME tag (no gapless trimming).
"${LAME[@]}" --cbr -b 64 -m m --add-id3v2 --tt "Mono 22k" --ta "Fixture Artist" --tl "Fixtures" \
    "$W/mono22k.wav" "$O/mono22k.mp3"
"${LAME[@]}" --cbr -b 128 --add-id3v2 --tt "Long Sixty-Five" --ta "Fixture Artist" --tl "Fixtures" \
    "$W/long65.wav" "$O/long65.mp3"
"${LAME[@]}" --cbr -b 128 --add-id3v2 --tt "Corrupt" --ta "Fixture Artist" --tl "Fixtures" \
    "$W/corrupt.wav" "$O/corrupt.mp3"
"${LAME[@]}" --cbr -b 128 --add-id3v2 --tt "Nested" --ta "Fixture Artist" --tl "Fixtures" \
    "$W/nested.wav" "$O/nested/deeper/nested.mp3"

# truncated.mp3: first 60% of cbr.mp3 (the Info tag still claims full length).
size=$(stat -c %s "$O/cbr.mp3")
head -c $((size * 60 / 100)) "$O/cbr.mp3" >"$O/truncated.mp3"

printf 'This is not an MP3 file.\nIt is plain text with an .mp3 extension, used by importer tests.\n' >"$O/text.mp3"
: >"$O/empty.mp3"

"$PY" - "$O" <<'PYEOF'
import random, sys
from mutagen.id3 import ID3, TIT2, TPE1, TALB, Encoding

out = sys.argv[1]

# ID3v2.4, UTF-8 text frames, fixed padding, no ID3v1.
tag = ID3()
tag.add(TIT2(encoding=Encoding.UTF8, text=["Caf\u00e9 \u00dcn\u00efcode"]))
tag.add(TPE1(encoding=Encoding.UTF8, text=["Zo\u00eb"]))
tag.add(TALB(encoding=Encoding.UTF8, text=["\u00d1and\u00fa"]))
tag.save(out + "/id3v24.mp3", v1=0, v2_version=4, padding=lambda info: 256)

# corrupt.mp3: middle third overwritten with seeded pseudo-random bytes.
p = out + "/corrupt.mp3"
data = bytearray(open(p, "rb").read())
a, b = len(data) // 3, 2 * len(data) // 3
data[a:b] = random.Random(1).randbytes(b - a)
open(p, "wb").write(bytes(data))

# notmp3.mp3: 20 KiB of seeded pseudo-random bytes.
open(out + "/notmp3.mp3", "wb").write(random.Random(2).randbytes(20 * 1024))

# cover.jpg: tiny file with JPEG/JFIF magic; not an MP3, importers must skip it.
open(out + "/cover.jpg", "wb").write(
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"TrafficJamz fixture placeholder, not a real image" + b"\xff\xd9")
PYEOF

# --------------------------------------------------------------- manifest ---
# samples = samples per channel that mpg123 decodes (gapless on, native rate
# and channel count), i.e. raw s16 bytes / (2 * channels).
decoded_samples() { # FILE CHANNELS
    local bytes
    bytes=$({ mpg123 -q --gapless -e s16 -s "$1" 2>/dev/null || true; } | wc -c)
    echo $((bytes / (2 * $2)))
}

{
    echo "# TrafficJamz MP3 fixtures, generated by scripts/make-fixtures.sh"
    echo "# name<TAB>rate<TAB>channels<TAB>samples (samples per channel decoded by mpg123 $(mpg123 --version | awk '{print $2}') with gapless; 0 = invalid/not to be trusted)"
    wav_len=$(sox --i -s "$W/noxing.wav")
    echo "# noxing.mp3: source has ${wav_len} samples; without a LAME tag the decoder cannot strip encoder delay/padding, so the decoded count is larger"
    mono=$(decoded_samples "$O/mono22k.mp3" 1)
    echo "# mono22k.mp3: ${mono} samples at 22050 Hz mono; resampled to 44100 Hz that is $((mono * 2)) frames (x2 channels if upmixed to stereo)"
    echo "# truncated.mp3: mpg123 still decodes $(decoded_samples "$O/truncated.mp3" 2) samples before EOF (Info tag claims $(decoded_samples "$O/cbr.mp3" 2))"
    echo "# corrupt.mp3: mpg123 decodes $(decoded_samples "$O/corrupt.mp3" 2) samples, then gives up resyncing in the garbage (default resync limit 1024 bytes, MPG123_RESYNC_FAIL) and stops; source has $(sox --i -s "$W/corrupt.wav")"
    printf '%s\t%s\t%s\t%s\n' \
        cbr.mp3 44100 2 "$(decoded_samples "$O/cbr.mp3" 2)" \
        vbr.mp3 44100 2 "$(decoded_samples "$O/vbr.mp3" 2)" \
        noxing.mp3 44100 2 "$(decoded_samples "$O/noxing.mp3" 2)" \
        id3v1.mp3 44100 2 "$(decoded_samples "$O/id3v1.mp3" 2)" \
        id3v24.mp3 44100 2 "$(decoded_samples "$O/id3v24.mp3" 2)" \
        mono22k.mp3 22050 1 "$mono" \
        long65.mp3 44100 2 "$(decoded_samples "$O/long65.mp3" 2)" \
        truncated.mp3 44100 2 0 \
        corrupt.mp3 44100 2 0 \
        notmp3.mp3 0 0 0 \
        text.mp3 0 0 0 \
        empty.mp3 0 0 0 \
        cover.jpg 0 0 0 \
        nested/deeper/nested.mp3 44100 2 "$(decoded_samples "$O/nested/deeper/nested.mp3" 2)"
} >"$O/MANIFEST"

# ---------------------------------------------------------------- install ---
mkdir -p "$OUTDIR/nested/deeper"
rm -f "$OUTDIR/.fixtures-stamp"
for f in "${FILES[@]}" MANIFEST; do
    cp "$O/$f" "$OUTDIR/$f.tmp.$$"
    mv -f "$OUTDIR/$f.tmp.$$" "$OUTDIR/$f"
done
printf '%s' "$STAMP_WANT" >"$OUTDIR/.fixtures-stamp"
echo "wrote ${#FILES[@]} fixtures + MANIFEST to $OUTDIR"
