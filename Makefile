# Thin wrapper over CMake. On a fresh Debian machine `make run` and
# `make test` are the whole set-up: both install what is missing first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# CI (CI=true) builds with -Werror.
WERROR := $(if $(CI),ON,OFF)
CMAKE_ARGS ?=

PREFIX ?= /usr/local

.PHONY: install all deps deps-dev build build-run test test-sqlite test-pg faults run run-cluster asan bench bench-cluster bench-orders bench-earnings bench-order-put fuzz valgrind soak clean

all: build

# What building and running need (compiler, libraries, redis-server)...
deps:
	@scripts/deps.sh

# ... and what the tests and benchmarks add (cmocka, PostgreSQL's server,
# faketime, wrk, promtool, systemd-analyze, ...): scripts/deps.sh says why
# each is there.
deps-dev:
	@scripts/deps.sh dev

# The developer build: the product and its tests.
build: deps-dev
	@cmake -S . -B $(BUILD_DIR) -DAFFILIATE_WERROR=$(WERROR) -DAFFILIATE_TESTS=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)

# The product alone, for make run: no test tool is installed for it.
build-run: deps
	@cmake -S . -B $(BUILD_DIR) -DAFFILIATE_WERROR=$(WERROR) -DAFFILIATE_TESTS=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)

# cmake --install into DESTDIR$(PREFIX): binaries, CLI, systemd units
# (their paths follow PREFIX), sysusers entry, example environment file.
install: deps
	@cmake -S . -B $(BUILD_DIR) -DAFFILIATE_WERROR=$(WERROR) -DAFFILIATE_TESTS=OFF -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD_DIR) --prefix $(PREFIX)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2

# One backend of `make test` (which runs both): the tests as they are on
# SQLite, or only their PostgreSQL variants (<name>_pg, ctest label pg).
test-sqlite: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2 -LE pg

test-pg: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2 -L pg

# Only the fault tests (tests/faults/, also part of `make test`), with
# their printed counts (acked, lost, duplicated) shown.
faults: build
	@ctest --test-dir $(BUILD_DIR) -R '^test_faults_' -V > $(BUILD_DIR)/faults.log; rc=$$?; \
	  grep -E '^[0-9]+: faults |tests passed|\*\*\*Failed' $(BUILD_DIR)/faults.log; \
	  [ $$rc -eq 0 ] || echo "faults: see $(BUILD_DIR)/faults.log"; exit $$rc

run: build-run
	scripts/run.sh $(BUILD_DIR)/bin

# Two servers on one local PostgreSQL (kept in ./data-cluster across runs),
# Redis, a bridge with both URLs and the workers: scripts/run_cluster.sh.
run-cluster: build-run
	@scripts/deps.sh cluster
	scripts/run_cluster.sh $(BUILD_DIR)/bin

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
# Every sanitized process (tests, and the servers, bridges and workers they
# start, whose exit status a test may not look at) writes its ASan and LSan
# reports to build-asan/sanitizer/ instead of stderr: the target fails when
# any report is there, after printing it, whatever the tests said (a file
# that only lists the suppressions LSan used is not a report). (GCC's
# UBSan runtime ignores log_path: its reports stay on stderr, and
# -fno-sanitize-recover ends the process at the first one.)
ASAN_REPORTS = $(CURDIR)/build-asan/sanitizer
asan:
	@rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS)
	@rc=0; ASAN_OPTIONS=log_path=$(ASAN_REPORTS)/report UBSAN_OPTIONS=log_path=$(ASAN_REPORTS)/report \
	  $(MAKE) test BUILD_DIR=build-asan CMAKE_ARGS="-DAFFILIATE_SANITIZER=address+undefined -DCMAKE_BUILD_TYPE=Debug" || rc=$$?; \
	for f in $(ASAN_REPORTS)/report*; do \
	  [ -e "$$f" ] || continue; \
	  if ! grep -qE "ERROR: |SUMMARY: " "$$f"; then \
	    echo "asan: $$f: only leaks suppressed by tests/lsan.supp"; continue; fi; \
	  rc=1; echo "asan: report $$f:"; cat "$$f"; \
	done; \
	[ $$rc = 0 ] && echo "asan: no sanitizer report" || echo "asan: FAILED"; exit $$rc

# Printed figures, not a timed test: each target beside its bare limit
# (civetweb, NNG echo) measured in the same run. BENCH_SECONDS=10 each.
bench: build
	-@scripts/deps.sh bench
	tests/bench/bench.sh $(BUILD_DIR)/bin

# A page of GET /orders with each filter combination beside an unfiltered
# page, at 1,000,000 orders (ORDERS_SCALE_ROWS) loaded straight into
# SQLite; about 3 minutes. make bench runs it last.
bench-orders: build
	tests/bench/bench_orders_scale.sh $(BUILD_DIR)/bin

# Earnings reports at 1,000,000 orders (issue 18): latency against the
# aggregate rows read and the orders they count; a few minutes.
bench-earnings: build
	tests/bench/bench_earnings.sh $(BUILD_DIR)/bin

# What the earnings triggers cost an order (issue 18), SQLite and
# PostgreSQL, with callgrind's instruction counts; a minute or two.
bench-order-put: build
	ORDER_PUT_PG=1 tests/bench/bench_order_put.sh $(BUILD_DIR)/bin

# Durable orders/s and cached reads/s with SQLite, PostgreSQL and one
# server, PostgreSQL and two servers, beside the bare civetweb handler, in
# one run (about 10 x BENCH_SECONDS + 30 s).
bench-cluster: build
	tests/bench/bench_cluster.sh $(BUILD_DIR)/bin

# libFuzzer targets (tests/fuzz/), each FUZZ_SECONDS (60) from its seed
# corpus, under AddressSanitizer + UndefinedBehaviorSanitizer. New inputs
# go to build-fuzz/corpus/, crashes to build-fuzz/crash-<target>-*: every
# target runs, then the make fails naming each crash, to be copied into
# tests/fuzz/regressions/<target>/ (a ctest test from then on) before the
# fix. One input running over 60 s is a hang (a timeout-* artifact, a
# failure); libFuzzer's slow-unit-* notes are not failures (a loaded host
# pausing the process makes them). CI runs each for 20 s (.ci/run).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = fuzz_dispatch fuzz_json fuzz_route fuzz_webhook fuzz_job fuzz_forwarded fuzz_textpb
fuzz:
	@scripts/deps.sh fuzz
	@CC=clang cmake -S . -B build-fuzz -DAFFILIATE_FUZZ=ON -DAFFILIATE_TESTS=OFF \
	  -DAFFILIATE_SANITIZER=address+undefined -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build-fuzz -j$(JOBS) >/dev/null
	@bad=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=60 \
	    -artifact_prefix=build-fuzz/crash-$$t- build-fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	    tests/fuzz/regressions/$$t \
	    >build-fuzz/$$t.log 2>&1 || { bad=1; echo "fuzz: $$t FAILED (build-fuzz/$$t.log)"; }; \
	  grep -E "DONE|ERROR|SUMMARY" build-fuzz/$$t.log; \
	done; \
	for f in build-fuzz/crash-*; do \
	  [ -e "$$f" ] || continue; \
	  case $$f in *-slow-unit-*) echo "fuzz: $$f: slow (host pauses make these; not a failure)"; continue;; esac; \
	  bad=1; \
	  t=$$(basename $$f | sed 's/^crash-\(fuzz_[a-z]*\)-.*/\1/'); \
	  echo "fuzz: CRASH $$f (log: build-fuzz/$$t.log); keep it as a test first:"; \
	  echo "  mv $$f tests/fuzz/regressions/$$t/<what-it-broke>"; \
	done; exit $$bad

# The e2e session with the server, bridge and worker under valgrind
# memcheck: fails on any error or definitely lost byte (tests/valgrind.sh).
valgrind: build
	@scripts/deps.sh valgrind
	tests/valgrind.sh $(BUILD_DIR)/bin

# A bounded soak (tests/soak/soak.c): SOAK_SECONDS (180) of mixed traffic
# at SOAK_RATE (200) requests/s against redis, the server, two workers and
# the bridge; fails when RSS or open descriptors grow past a small margin
# from the first minute to the last, or any answer is not the expected one.
soak: build
	AFFILIATE_BIN_DIR=$(BUILD_DIR)/bin $(BUILD_DIR)/bin/soak

clean:
	rm -rf build build-asan build-fuzz
