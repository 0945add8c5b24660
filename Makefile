# Thin wrapper around CMake. `make run` and `make test` install missing Debian packages first,
# so on a fresh Debian 12 machine they are the whole set-up. Both need root (BPF, nftables).
BUILD ?= build
JOBS ?= $(shell nproc)
NETWATCH_ARGS ?=
SUDO := $(if $(filter 0,$(shell id -u)),,$(if $(shell command -v sudo),sudo,))

.PHONY: all deps build test test-unit run trace doctor vmlinux clean bench bench-deps bench-probes bench-smoke

all: build

deps:
	@$(SUDO) bash scripts/install-deps.sh

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Every test: unit tests and the root tests that load the real probes and send real traffic.
test: build
	$(SUDO) scripts/prepare-kernel.sh
	cd $(BUILD) && $(SUDO) ctest --output-on-failure --no-tests=error -j1

# Only the tests that need no privileges.
test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

run: build
	$(SUDO) scripts/prepare-kernel.sh
	$(SUDO) $(BUILD)/netwatch agent $(NETWATCH_ARGS)

trace: build
	$(SUDO) $(BUILD)/netwatch trace $(NETWATCH_ARGS)

doctor: build
	$(SUDO) $(BUILD)/netwatch doctor

# Benchmarks (BENCHMARKS.md). Each benchmark is its own target and `bench` runs them all; they need
# root and print tables, they do not assert: see BENCHMARKS.md for the targets.
BENCH_PROBES_ARGS ?=
BENCH_PROBE_COST = $(BUILD)/bench/netwatch_probe_cost

bench: bench-probes

bench-deps: deps
	@$(SUDO) bash scripts/install-bench-deps.sh

# Probe cost in ns/hit (bpf_stats) against an empty program and bpftrace, in one loopback run.
bench-probes: bench-deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target netwatch_probe_cost
	$(SUDO) scripts/prepare-kernel.sh
	$(SUDO) $(BENCH_PROBE_COST) $(BENCH_PROBES_ARGS)

# A 2-second run of every benchmark: checks that they still work, measures nothing worth keeping.
bench-smoke: bench-deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target netwatch_probe_cost
	$(SUDO) scripts/prepare-kernel.sh
	$(SUDO) $(BENCH_PROBE_COST) --smoke

# Regenerates the checked-in vmlinux.h from the running kernel's BTF.
vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux/x86/vmlinux.h

clean:
	rm -rf $(BUILD)
