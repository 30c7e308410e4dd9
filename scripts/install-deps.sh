#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12 (run as root). Idempotent:
# packages already present are not fetched again; `apt-get update` runs only when something is missing.
set -euo pipefail

PACKAGES=(
  pkg-config libasound2-dev libmpg123-dev libsqlite3-dev   # the C libraries jamzd links
  libasound2-plugins pulseaudio alsa-utils                 # ALSA pulse plugin + a real-time paced null sink
  mpg123 lame sox libsox-fmt-mp3 python3-mutagen           # fixtures, demo music, benchmark peer
  espeak-ng                                                # the spoken prompts, rendered at build time (scripts/make-prompts.sh)
  mpd mpc                                                  # the other benchmark peer (jamz-bench footprint starts its own MPD)
  procps psmisc                                            # ps/pkill/killall for the process tests
  iproute2                                                 # network namespaces: the convoy tests run cars as separate hosts
  qrencode                                                 # `jamz group create` shows the join code as a QR code too
  libqrencode-dev zbar-tools                               # the phone page's join QR (CQRencode); zbarimg decodes it in the tests
  libgps-dev gpsd gpsd-clients                             # libgps for JamzGPS; a real gpsd (and gpsfake) for its tests
  linux-libc-dev                                           # <linux/gpio.h>, <linux/input.h> for CLinuxInput
  libbluetooth-dev                                         # BlueZ's HCI/L2CAP socket headers (the BLE link; CBluetooth)
  chromium chromium-driver python3-selenium                # the phone page's test drives a real headless browser (scripts/page-browser.py)
  libmosquitto-dev mosquitto openssl python3-paho-mqtt     # the relay link (libmosquitto); a real broker, certificates and a hostile publisher for its tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; fi
  echo "install-deps: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "install-deps: swift is in /opt/swift/usr/bin; add it to PATH (the Makefile does)" >&2
  else
    echo "install-deps: no Swift toolchain found. Install Swift 6.x for Debian 12 from swift.org into /opt/swift" >&2
    exit 1
  fi
fi
