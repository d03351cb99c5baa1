# Thin wrapper over CMake. On a fresh Debian machine `make run` and
# `make test` are the whole set-up: both install what is missing first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# CI (CI=true) builds with -Werror.
WERROR := $(if $(CI),ON,OFF)
CMAKE_ARGS ?=

.PHONY: all deps build test run asan bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -DAFFILIATE_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2

run: build
	scripts/run.sh $(BUILD_DIR)/bin

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) test BUILD_DIR=build-asan CMAKE_ARGS="-DAFFILIATE_SANITIZER=address+undefined -DCMAKE_BUILD_TYPE=Debug"

# Printed figures, not a timed test: each target beside its bare limit
# (civetweb, NNG echo) measured in the same run. BENCH_SECONDS=10 each.
bench: build
	tests/bench/bench.sh $(BUILD_DIR)/bin

clean:
	rm -rf build build-asan
