# TrafficJamz head unit. The two commands of the README:
#   make demo   build, make a demo library, start jamzd and show live status
#   make test   install what is needed, build, run every test (what .ci/run calls)
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin
FIXTURES := $(CURDIR)/.build/fixtures
DEMO := $(CURDIR)/demo-data

.PHONY: deps build release test fixtures demo bench bench-sync bench-gps clean

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

clean:
	rm -rf .build $(DEMO)
