# TrafficJamz head unit. The two commands of the README:
#   make demo   build, make a demo library, start jamzd and show live status
#   make test   install what is needed, build, run every test (what .ci/run calls)
#   make image  the car images: amd64 (board qemu-x86_64) and arm64 (board rpi4), see image/README.md
#   make hil    the QEMU boot test of the amd64 image, and the arm64 image's boot (image/test-boot)
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin
FIXTURES := $(CURDIR)/.build/fixtures
DEMO := $(CURDIR)/demo-data

.PHONY: deps build release test fixtures demo bench bench-sync bench-gps bench-footprint image hil clean

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

# Real gpsd fed with the committed NMEA logs (about a minute).
bench-gps: release
	.build/release/jamz-bench gps

# Issue 15: CPU, wake-ups, memory and disk writes of jamzd playing, paused and idle in a 3-car
# convoy, against MPD and mpg123 on the same paced sink (as root: the convoy runs in network
# namespaces; about 10 minutes). FOOTPRINT_ARGS="--seconds 10" for a quick look.
bench-footprint: release fixtures
	JAMZ_FIXTURES=$(FIXTURES) .build/release/jamz-bench footprint $(FOOTPRINT_ARGS)

# The car images (as root). jamzd/jamz with the Swift stdlib linked in: the image has no Swift
# runtime. The arm64 jamzd needs the aarch64 Swift SDK (not on this machine): pass
# JAMZD_ARM64=PATH JAMZ_ARM64=PATH to put a cross-built pair into the rpi4 image.
STATIC := swift build -c release --static-swift-stdlib
image: deps
	$(STATIC) --product jamzd
	$(STATIC) --product jamz
	bash image/build --board qemu-x86_64 --jamzd $$($(STATIC) --show-bin-path)/jamzd --jamz $$($(STATIC) --show-bin-path)/jamz
	bash image/build --board rpi4 $(if $(JAMZD_ARM64),--jamzd $(JAMZD_ARM64)) $(if $(JAMZ_ARM64),--jamz $(JAMZ_ARM64))

# Hardware-in-the-loop boot test in QEMU (as root): logs and figures in .build/hil/.
hil: deps
	bash image/test-boot

clean:
	rm -rf .build $(DEMO)
