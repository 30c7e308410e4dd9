# TrafficJamz head unit. The two commands of the README:
#   make demo   build, make a demo library, start jamzd and show live status
#   make test   install what is needed, build, run every test (what .ci/run calls)
#   make arm64  jamzd/jamz cross-compiled for aarch64 (image/cross-arm64): .build/arm64/bin/
#   make image  the car images: amd64 (board qemu-x86_64) and arm64 (board rpi4), see image/README.md
#   make hil    the QEMU boot tests of the amd64 and arm64 images (image/test-boot)
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin
FIXTURES := $(CURDIR)/.build/fixtures
DEMO := $(CURDIR)/demo-data

.PHONY: deps build release test fixtures demo bench bench-sync bench-page bench-pair bench-gps bench-footprint arm64 insn image hil clean

deps:
	@bash scripts/install-deps.sh

build: deps
	swift build --build-tests

release: deps
	swift build -c release

fixtures: deps
	@bash scripts/make-fixtures.sh $(FIXTURES)

# Every test: unit tests, real libmpg123/ALSA/SQLite tests and the jamzd process tests
# (which start the built daemon, kill -9 it and restart it). One test at a time: the process
# tests play in real time and check where the music was, which a starved CPU would blur.
test: build fixtures
	JAMZ_FIXTURES=$(FIXTURES) swift test --skip-build --no-parallel 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}

demo: release
	@bash scripts/demo.sh

# Figures for the issue notes (not part of `make test`).
bench: release fixtures
	JAMZ_FIXTURES=$(FIXTURES) .build/release/jamz-bench playback

bench-sync: release
	.build/release/jamz-bench sync

# The phone page: load, press-to-page over the WebSocket (headless Chromium), upload throughput.
bench-page: release fixtures
	bash scripts/page-bench.sh .build/release $(FIXTURES)

# The joins without typing: short code and push button between two jamzd in namespaces (root).
bench-pair: release
	bash scripts/pair-bench.sh .build/release

# Real gpsd fed with the committed NMEA logs (about a minute).
bench-gps: release
	.build/release/jamz-bench gps

# Issue 15: CPU, wake-ups, memory and disk writes of jamzd playing, paused and idle in a 3-car
# convoy, against MPD and mpg123 on the same paced sink (as root: the convoy runs in network
# namespaces; about 10 minutes). FOOTPRINT_ARGS="--seconds 10" for a quick look.
bench-footprint: release fixtures
	JAMZ_FIXTURES=$(FIXTURES) .build/release/jamz-bench footprint $(FOOTPRINT_ARGS)

# jamzd/jamz for aarch64 (as root): Debian sid's Swift 6.2.3, amd64 compiler in a chroot and
# the arm64 runtime of the same version, against a Debian 12 arm64 sysroot, Swift stdlib linked
# in (image/cross-arm64; toolchain and SDK cached in .build/arm64/).
ARM64_BIN := $(CURDIR)/.build/arm64/bin
arm64: deps
	bash image/install-deps.sh
	bash image/cross-arm64

# Guest instructions per minute of playback, aarch64 vs x86_64 (as root: qemu-user + a counting
# plugin; README, "Car image").
insn: fixtures arm64
	bash scripts/insn/per-minute.sh

# The car images (as root). jamzd/jamz with the Swift stdlib linked in: the image has no Swift
# runtime. The rpi4 image carries the cross-built aarch64 pair (make arm64).
STATIC := swift build -c release --static-swift-stdlib
image: deps arm64
	$(STATIC) --product jamzd
	$(STATIC) --product jamz
	bash image/build --board qemu-x86_64 --jamzd $$($(STATIC) --show-bin-path)/jamzd --jamz $$($(STATIC) --show-bin-path)/jamz
	bash image/build --board rpi4 --jamzd $(ARM64_BIN)/jamzd --jamz $(ARM64_BIN)/jamz

# Hardware-in-the-loop boot tests in QEMU (as root): builds what it boots (the aarch64 pair
# too, as make arm64 does); logs and figures in .build/hil/.
hil: deps
	bash image/test-boot

clean:
	rm -rf .build $(DEMO)
