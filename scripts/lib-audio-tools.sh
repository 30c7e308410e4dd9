# Sourced by the audio-generating scripts: checks the tools they need and sets $PY to a
# python3 that can import mutagen (the one on PATH, e.g. pyenv with `pip install mutagen`, or
# Debian's /usr/bin/python3 with python3-mutagen).
require_tools() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install -y sox lame mpg123)" >&2; exit 1; }
    done
    PY=
    for cand in python3 /usr/bin/python3; do
        if command -v "$cand" >/dev/null && "$cand" -c 'import mutagen' 2>/dev/null; then
            PY=$cand
            break
        fi
    done
    if [[ -z $PY ]]; then
        echo "error: python3 module 'mutagen' not found (apt-get install -y python3-mutagen, or pip install mutagen)" >&2
        exit 1
    fi
}
