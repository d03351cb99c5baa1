# Thin wrapper over CMake. On a fresh Debian machine `make run` and
# `make test` are the whole set-up: both install what is missing first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# CI (CI=true) builds with -Werror.
WERROR := $(if $(CI),ON,OFF)
CMAKE_ARGS ?=

.PHONY: all deps build test faults run asan bench fuzz clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -DAFFILIATE_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2

# Only the fault tests (tests/faults/, also part of `make test`), with
# their printed counts (acked, lost, duplicated) shown.
faults: build
	@ctest --test-dir $(BUILD_DIR) -R '^test_faults_' -V > $(BUILD_DIR)/faults.log; rc=$$?; \
	  grep -E '^[0-9]+: faults |tests passed|\*\*\*Failed' $(BUILD_DIR)/faults.log; \
	  [ $$rc -eq 0 ] || echo "faults: see $(BUILD_DIR)/faults.log"; exit $$rc

run: build
	scripts/run.sh $(BUILD_DIR)/bin

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) test BUILD_DIR=build-asan CMAKE_ARGS="-DAFFILIATE_SANITIZER=address+undefined -DCMAKE_BUILD_TYPE=Debug"

# Printed figures, not a timed test: each target beside its bare limit
# (civetweb, NNG echo) measured in the same run. BENCH_SECONDS=10 each.
bench: build
	tests/bench/bench.sh $(BUILD_DIR)/bin

# libFuzzer targets (tests/fuzz/), each FUZZ_SECONDS (60) from its seed
# corpus, under AddressSanitizer + UndefinedBehaviorSanitizer. New inputs
# go to build-fuzz/corpus/, crashes to build-fuzz/crash-*.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = fuzz_dispatch fuzz_json fuzz_route fuzz_webhook fuzz_job
fuzz: deps
	@command -v clang >/dev/null || { echo "fuzz: needs clang: apt-get install -y clang"; exit 1; }
	@CC=clang cmake -S . -B build-fuzz -DAFFILIATE_FUZZ=ON -DAFFILIATE_TESTS=OFF \
	  -DAFFILIATE_SANITIZER=address+undefined -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    -artifact_prefix=build-fuzz/crash-$$t- build-fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	    2>&1 | grep -E "DONE|ERROR|SUMMARY" || true; \
	  ! ls build-fuzz/crash-$$t-* >/dev/null 2>&1; \
	done

clean:
	rm -rf build build-asan build-fuzz
