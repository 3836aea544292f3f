# Thin wrapper over CMake. `make demo` and `make test` do all set-up on a fresh Debian machine.
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
WERROR := $(if $(CI),ON,OFF)
CMAKE_FLAGS ?=

.PHONY: all setup build build-asan test test-release test-asan demo bench install clean fuzz

all: build

setup:
	@bash scripts/setup

build: setup
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVEIL_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	cmake --build build -j$(JOBS)

build-asan: setup
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVEIL_SANITIZE=ON -DVEIL_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	cmake --build build-asan -j$(JOBS)

# The whole suite: the release build, then the same tests under ASan + UBSan.
test: test-release test-asan

test-release: build
	cd build && ctest --output-on-failure -j$(JOBS)

test-asan: build-asan
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS)

# The main job: the hospital scenario end to end (examples/hospital), in build/demo.
demo: build
	bash examples/hospital/run.sh build build/demo

bench: build
	./build/veil-bench ring

# libFuzzer on every loader of the wire format for FUZZ_SECONDS (default 60); not part of `make test`.
fuzz: setup
	bash tests/fuzz/run.sh

install: build
	cmake --install build --prefix "$(PREFIX)"

clean:
	rm -rf build build-asan
