#!/usr/bin/env bash
# Renders the driver's spoken prompts (issue 17) with Debian's espeak-ng CLI into OUTDIR, one
# file per piece: NAME.raw, mono S16_LE at 22050 Hz (espeak-ng's own rate; sox trims the
# silence around each piece and sets the level). jamzd converts them to the output's rate and
# channel count when it loads them (JamzDaemon/Prompts.swift), so one set serves every board.
# The piece names are the ones `Prompt.pieces` (JamzCore/Prompt.swift) asks for.
# Usage: scripts/make-prompts.sh OUTDIR
set -euo pipefail
OUTDIR=${1:?usage: make-prompts.sh OUTDIR}
command -v espeak-ng >/dev/null || { echo "make-prompts: espeak-ng is not installed (scripts/install-deps.sh)" >&2; exit 1; }
command -v sox >/dev/null || { echo "make-prompts: sox is not installed (scripts/install-deps.sh)" >&2; exit 1; }
cd "$(dirname "$0")/.."

# name|text
PIECES=(
  "you-are-the-dj|you are the D J"
  "joined-the-convoy|joined the convoy"
  "left-the-convoy|left the convoy"
  "car|car"
  "left|left"
  "no-gps|no G P S"
  "gps-is-back|G P S is back"
  "offline|offline"
  "back-online|back online"
  "press-join|press join on the other car"
  "paired|paired"
  "check-word|check words"
  "pairing-failed|pairing failed"
  "join-overlap|more than one car pressed join, try again"
  "press-join-if-same|if the other car says the same words, press join again"
  "other-car-confirms|the other car's driver presses join again if the words match"
)
NUMBERS=(one two three four five six seven eight nine ten eleven twelve thirteen fourteen
         fifteen sixteen seventeen eighteen nineteen twenty)
for i in "${!NUMBERS[@]}"; do PIECES+=("number-$((i + 1))|${NUMBERS[$i]}"); done
# The check words: the list in JamzCore/CheckWords.swift, read from the source (one list).
WORDS=$(sed -n '/static let all/,/\]/p' Sources/JamzCore/CheckWords.swift | grep -o '"[a-z]*"' | tr -d '"')
[ "$(echo "$WORDS" | wc -l)" = 32 ] || { echo "make-prompts: expected 32 check words in CheckWords.swift" >&2; exit 1; }
for w in $WORDS; do PIECES+=("word-$w|$w"); done

STAMP_WANT=$( { printf '%s\n' "${PIECES[@]}"; espeak-ng --version; cat "$0"; } | sha256sum | cut -c1-16)
if [ "$(cat "$OUTDIR/.prompts-stamp" 2>/dev/null)" = "$STAMP_WANT" ]; then
  echo "prompts up to date in $OUTDIR"; exit 0
fi
mkdir -p "$OUTDIR"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
for p in "${PIECES[@]}"; do
  name=${p%%|*}; text=${p#*|}
  espeak-ng -v en-us -s 165 -w "$T/$name.wav" "$text"
  # Trim leading/trailing silence, peak at -3 dBFS, mono 22050 Hz S16_LE raw.
  sox "$T/$name.wav" -t raw -r 22050 -e signed -b 16 -c 1 -L "$T/$name.raw" \
      silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse norm -3
  mv -f "$T/$name.raw" "$OUTDIR/$name.raw"
done
printf '%s' "$STAMP_WANT" >"$OUTDIR/.prompts-stamp"
echo "wrote ${#PIECES[@]} prompt pieces to $OUTDIR"
