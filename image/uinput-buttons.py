#!/usr/bin/env python3
"""Virtual car buttons and ACC sense for the QEMU boot test (stdlib only).

Creates two evdev devices through /dev/uinput, named as board/qemu-x86_64/rootfs/etc/jamz/board.toml expects:
  "TrafficJamz Buttons"  EV_KEY: KEY_PLAYPAUSE, KEY_NEXTSONG, KEY_PREVIOUSSONG, KEY_VOLUMEUP,
                         KEY_VOLUMEDOWN, KEY_PROG1 (the DJ button)
  "TrafficJamz ACC"      EV_SW: SW_DOCK (1 = ACC on, 0 = ACC off)
then plays a scripted sequence and prints one line per step ("<monotonic s> STEP") so a test
can line up jamzd's log with what was pressed.

Steps (default sequence below): short:KEY_…  long:KEY_…  acc:on  acc:off  wait:SECONDS
  uinput-buttons.py                       # the default sequence, then keep the devices
  uinput-buttons.py --no-hold acc:off wait:70
  uinput-buttons.py --check-codes         # compare the codes below with the kernel headers

Uses the legacy uinput_user_dev write (works on every kernel with uinput; UI_DEV_SETUP needs
4.5+). Needs root (or write access to /dev/uinput) and the uinput module (CONFIG_INPUT_UINPUT).
Not run on the development host (it has no /dev/uinput); written from <linux/uinput.h> and
<linux/input-event-codes.h> and checked with `python3 -m py_compile` and `--check-codes`.
"""
import argparse
import fcntl
import os
import re
import struct
import sys
import time

# <linux/input-event-codes.h>
EV_SYN, EV_KEY, EV_SW = 0x00, 0x01, 0x05
SYN_REPORT = 0
CODES = {
    "KEY_VOLUMEDOWN": 114, "KEY_VOLUMEUP": 115, "KEY_PROG1": 148,
    "KEY_NEXTSONG": 163, "KEY_PLAYPAUSE": 164, "KEY_PREVIOUSSONG": 165,
    "SW_DOCK": 0x05,
}
BUS_VIRTUAL = 0x06
BUTTON_KEYS = ["KEY_PLAYPAUSE", "KEY_NEXTSONG", "KEY_PREVIOUSSONG", "KEY_VOLUMEUP", "KEY_VOLUMEDOWN", "KEY_PROG1"]

# <asm-generic/ioctl.h>: x86, x86_64, arm and arm64 share this encoding.
_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30
_IOC_NONE, _IOC_WRITE = 0, 1


def _ioc(direction, typ, nr, size):
    return (direction << _IOC_DIRSHIFT) | (ord(typ) << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) | (size << _IOC_SIZESHIFT)


# <linux/uinput.h>
UI_DEV_CREATE = _ioc(_IOC_NONE, "U", 1, 0)
UI_DEV_DESTROY = _ioc(_IOC_NONE, "U", 2, 0)
UI_SET_EVBIT = _ioc(_IOC_WRITE, "U", 100, struct.calcsize("i"))
UI_SET_KEYBIT = _ioc(_IOC_WRITE, "U", 101, struct.calcsize("i"))
UI_SET_SWBIT = _ioc(_IOC_WRITE, "U", 109, struct.calcsize("i"))
UINPUT_MAX_NAME_SIZE = 80
ABS_CNT = 0x40

# struct input_event: struct timeval (two C longs: 16 bytes on 64-bit, 8 on 32-bit) + __u16 type,
# __u16 code, __s32 value. The kernel stamps events itself; the time written is ignored.
INPUT_EVENT = struct.Struct("@llHHi")


def user_dev(name):
    """struct uinput_user_dev: name[80], struct input_id {bustype, vendor, product, version},
    __u32 ff_effects_max, __s32 absmax/absmin/absfuzz/absflat[ABS_CNT]."""
    raw = name.encode()[: UINPUT_MAX_NAME_SIZE - 1]
    return struct.pack("@%dsHHHHI%di" % (UINPUT_MAX_NAME_SIZE, 4 * ABS_CNT),
                       raw, BUS_VIRTUAL, 0x4A5A, 0x0001, 1, 0, *([0] * (4 * ABS_CNT)))


class Device:
    def __init__(self, name, evbits, keys=(), switches=()):
        self.name = name
        self.fd = os.open("/dev/uinput", os.O_WRONLY | os.O_NONBLOCK)
        for ev in evbits:
            fcntl.ioctl(self.fd, UI_SET_EVBIT, ev)
        for k in keys:
            fcntl.ioctl(self.fd, UI_SET_KEYBIT, CODES[k])
        for s in switches:
            fcntl.ioctl(self.fd, UI_SET_SWBIT, CODES[s])
        os.write(self.fd, user_dev(name))
        fcntl.ioctl(self.fd, UI_DEV_CREATE)

    def emit(self, typ, code, value):
        os.write(self.fd, INPUT_EVENT.pack(0, 0, typ, code, value) + INPUT_EVENT.pack(0, 0, EV_SYN, SYN_REPORT, 0))

    def close(self):
        try:
            fcntl.ioctl(self.fd, UI_DEV_DESTROY)
        finally:
            os.close(self.fd)


DEFAULT_SEQUENCE = [
    "acc:on", "wait:4",
    "short:KEY_PLAYPAUSE", "wait:2",      # pause
    "short:KEY_PLAYPAUSE", "wait:2",      # play again
    "long:KEY_PROG1", "wait:2",           # take control (refused when not in a convoy: logged)
    "acc:off", "wait:3",                  # fade out + save; grace period starts
    "acc:on", "wait:2",                   # blip: resumes at once
]


def log(step):
    print("%.3f %s" % (time.monotonic(), step), flush=True)


def run(sequence, buttons, acc, long_s):
    for step in sequence:
        kind, _, arg = step.partition(":")
        log(step)
        if kind == "wait":
            time.sleep(float(arg))
        elif kind in ("short", "long"):
            if arg not in BUTTON_KEYS:
                raise SystemExit("unknown key %r: one of %s" % (arg, ", ".join(BUTTON_KEYS)))
            buttons.emit(EV_KEY, CODES[arg], 1)
            time.sleep(0.1 if kind == "short" else long_s)
            buttons.emit(EV_KEY, CODES[arg], 0)
        elif kind == "acc" and arg in ("on", "off"):
            acc.emit(EV_SW, CODES["SW_DOCK"], 1 if arg == "on" else 0)
        else:
            raise SystemExit("bad step %r: short:KEY, long:KEY, acc:on, acc:off or wait:SECONDS" % step)


def check_codes(header="/usr/include/linux/input-event-codes.h"):
    text = open(header).read()
    bad = 0
    for name, value in list(CODES.items()) + [("EV_KEY", EV_KEY), ("EV_SW", EV_SW), ("EV_SYN", EV_SYN)]:
        m = re.search(r"#define\s+%s\s+(0x[0-9a-fA-F]+|\d+)" % name, text)
        ok = m is not None and int(m.group(1), 0) == value
        bad += not ok
        print("%-18s %4d %s" % (name, value, "ok" if ok else "MISMATCH (header: %s)" % (m.group(1) if m else "missing")))
    return bad


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("steps", nargs="*", help="short:KEY long:KEY acc:on acc:off wait:S (default: the scripted sequence)")
    p.add_argument("--long-seconds", type=float, default=1.5, help="how long a long press is held (default 1.5)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds between creating the devices and the first step (jamzd looks every 1.5 s)")
    p.add_argument("--no-hold", action="store_true", help="destroy the devices at the end instead of keeping them until killed")
    p.add_argument("--check-codes", action="store_true", help="compare the event codes with the kernel headers and exit")
    a = p.parse_args()
    if a.check_codes:
        sys.exit(1 if check_codes() else 0)
    if not os.path.exists("/dev/uinput"):
        sys.exit("no /dev/uinput: load the uinput module (modprobe uinput) and run as root")
    buttons = Device("TrafficJamz Buttons", [EV_KEY], keys=BUTTON_KEYS)
    acc = Device("TrafficJamz ACC", [EV_SW], switches=["SW_DOCK"])
    # A new switch device reads 0 (= ACC off): report ACC on at once.
    acc.emit(EV_SW, CODES["SW_DOCK"], 1)
    log("created")
    try:
        time.sleep(a.settle)
        run(a.steps or DEFAULT_SEQUENCE, buttons, acc, a.long_seconds)
        log("done")
        if not a.no_hold:
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        buttons.close()
        acc.close()


if __name__ == "__main__":
    main()
