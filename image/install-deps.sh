#!/usr/bin/env bash
# What building the car image and booting it in QEMU need on a Debian 12 host (run as root).
# Idempotent: nothing is fetched when everything is there; arm64 emulation (binfmt_misc +
# qemu-aarch64) is switched on only when it is not already.
set -euo pipefail

PACKAGES=(
  mmdebstrap uidmap arch-test                 # the root filesystem, built without mounting (--mode=unshare)
  e2fsprogs qemu-utils zstd                   # mkfs.ext4 -d, qemu-img, the initramfs unpacked for QEMU
  qemu-system-x86 qemu-system-arm             # the boot test (TCG) and the arm64 boot
  qemu-user-static binfmt-support             # running arm64 maintainer scripts while building the arm64 rootfs
  binutils-aarch64-linux-gnu                  # stripping the aarch64 jamzd/jamz for the image
  util-linux file                             # unshare (image/cross-arm64's chroot mounts), file (the boot test's checks)
  mpg123 python3-numpy                        # the boot test decodes the demo track and correlates the capture
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "image/install-deps: need root to install: ${missing[*]}" >&2; exit 1; fi
  echo "image/install-deps: installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi

# arm64 emulation for the arm64 rootfs (maintainer scripts run under qemu-aarch64-static).
if [ "${1:-}" = --arm64 ]; then
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 || true
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    # binfmt-support could not register it (e.g. no init system): register by hand, with F
    # (fix binary) so it works inside mmdebstrap's namespaces.
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OCPF' \
      > /proc/sys/fs/binfmt_misc/register 2>/dev/null || \
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
      > /proc/sys/fs/binfmt_misc/register
  fi
  grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || { echo "image/install-deps: qemu-aarch64 binfmt not enabled" >&2; exit 1; }
fi
