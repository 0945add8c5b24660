# Thin wrapper around CMake. `make run` and `make test` install missing Debian packages first,
# so on a fresh Debian 12 machine they are the whole set-up. Both need root (BPF, nftables).
BUILD ?= build
JOBS ?= $(shell nproc)
NETWATCH_ARGS ?=
SUDO := $(if $(filter 0,$(shell id -u)),,$(if $(shell command -v sudo),sudo,))

.PHONY: image test-container all deps build test test-kernels test-unit test-sanitize test-tsan soak fuzz run trace doctor vmlinux clean bench bench-deps bench-build \
        bench-probes bench-throughput bench-churn bench-replay bench-memory bench-metrics bench-cpu bench-restart bench-smoke

all: build

deps:
	@$(SUDO) bash scripts/install-deps.sh

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DNETWATCH_TESTS=ON

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Every test: unit tests, the root tests that load the real probes and send real traffic,
# bench_smoke (every benchmark for a few seconds: its packages come from bench-deps), the 90 s soak
# and 30 s of each fuzz target (ctest labels soak, fuzz); then the unit tests and the agent's kernel
# tests under ASan+UBSan and under TSan, each in a build of its own. CI (.ci/run) runs this.
test: build bench-deps
	$(SUDO) scripts/prepare-kernel.sh
	cd $(BUILD) && $(SUDO) ctest --output-on-failure --no-tests=error -j1
	$(MAKE) --no-print-directory test-sanitize SANITIZE_SCOPE=ci
	$(MAKE) --no-print-directory test-tsan TSAN_SCOPE=ci

# The soak alone, for SOAK_SECONDS (make test runs it for 90 s): the real agent under connection
# churn and wrk on /metrics and /api/v1/connections; RSS and fds must stay flat, no HTTP error.
SOAK_SECONDS ?= 600
soak: build
	$(SUDO) scripts/prepare-kernel.sh
	$(SUDO) env SOAK_SECONDS=$(SOAK_SECONDS) $(BUILD)/tests/netwatch_soak_tests

# The kernel matrix alone (ctest's kernel_matrix in make test): each kernel of
# tests/kernels/kernels.txt, fetched once per machine into /var/cache/netwatch/kernels, booted
# under qemu with the probe and agent tests in every variant (tests/kernels/run.sh).
test-kernels: build
	$(SUDO) bash tests/kernels/run.sh $(BUILD)

# Only the tests that need no privileges.
test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

# Unit and kernel tests built with ASan and UBSan (GCC); any report fails the run, also one from an
# agent the tests started (scripts/sanitized-ctest.sh). SANITIZE_SCOPE=all: every unit and kernel
# test; ci: the unit tests and the kernel tests that run the real agent (what make test runs).
SANITIZE_SCOPE ?= all
SANITIZE_TARGETS = netwatch netwatch_unit_tests netwatch_kernel_tests
test-sanitize: deps
	cmake -S . -B build-sanitize -G Ninja -DNETWATCH_TESTS=ON -DNETWATCH_SANITIZE=ON
	cmake --build build-sanitize -j $(JOBS) --target $(SANITIZE_TARGETS)
	$(SUDO) scripts/prepare-kernel.sh
	$(SUDO) bash scripts/sanitized-ctest.sh build-sanitize $(SANITIZE_SCOPE)

# The same with ThreadSanitizer: the agent's reader thread, HTTP threads and snapshot store.
TSAN_SCOPE ?= ci
test-tsan: deps
	cmake -S . -B build-tsan -G Ninja -DNETWATCH_TESTS=ON -DNETWATCH_TSAN=ON
	cmake --build build-tsan -j $(JOBS) --target $(SANITIZE_TARGETS)
	$(SUDO) scripts/prepare-kernel.sh
	$(SUDO) bash scripts/sanitized-ctest.sh build-tsan $(TSAN_SCOPE)

# Each libFuzzer target (tests/fuzz/fuzz_*.cpp) for FUZZ_SECONDS, clang-built into build-fuzz/, from
# the seeds checked in under tests/fuzz/corpus/<target>/ (tests/fuzz/run.sh; ctest's `fuzz` test runs
# the same for 30 s each in make test).
FUZZ_SECONDS ?= 30
fuzz: deps
	JOBS=$(JOBS) bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# The agent image with podman (scripts/make-image.sh): the Dockerfile as it is; its base is pulled,
# or made with mmdebstrap when no registry answers (cached in /var/cache/netwatch). Prints the size
# the image adds to its base.
image: deps
	$(SUDO) scripts/make-image.sh

# The chart's pod run for real under podman (tests/container/run.sh; ctest's `container` test in
# make test runs the same).
test-container: build
	$(SUDO) scripts/prepare-kernel.sh
	$(SUDO) bash tests/container/run.sh $(BUILD)

run: build
	$(SUDO) scripts/prepare-kernel.sh
	$(SUDO) $(BUILD)/netwatch agent $(NETWATCH_ARGS)

trace: build
	$(SUDO) $(BUILD)/netwatch trace $(NETWATCH_ARGS)

doctor: build
	$(SUDO) $(BUILD)/netwatch doctor

# Benchmarks (BENCHMARKS.md). Each benchmark is its own target and `bench` runs them all; they need
# root and print tables, they do not assert: see BENCHMARKS.md for the targets. BENCH_<NAME>_ARGS
# pass flags to one benchmark (e.g. BENCH_CHURN_ARGS="--pairs 20").
BENCH_PROBES_ARGS ?=
BENCH_THROUGHPUT_ARGS ?=
BENCH_CHURN_ARGS ?=
BENCH_REPLAY_ARGS ?=
BENCH_MEMORY_ARGS ?=
BENCH_METRICS_ARGS ?=
BENCH_CPU_ARGS ?=
BENCH_BIN = $(BUILD)/bench
BENCH_PROBE_COST = $(BENCH_BIN)/netwatch_probe_cost
BENCH_TARGETS = netwatch netwatch_probe_cost netwatch_throughput netwatch_churn netwatch_replay netwatch_memory \
                netwatch_render netwatch_scrape netwatch_agent_cpu netwatch_checkpoint

bench: bench-probes bench-throughput bench-churn bench-replay bench-memory bench-metrics bench-cpu bench-restart

bench-deps: deps

# Builds every benchmark once and mounts what the probes need.
bench-build: bench-deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target $(BENCH_TARGETS)
	$(SUDO) scripts/prepare-kernel.sh

# 1. Probe cost in ns/hit (bpf_stats) against an empty program and bpftrace, in one loopback run.
bench-probes: bench-build
	$(SUDO) $(BENCH_PROBE_COST) $(BENCH_PROBES_ARGS)

# 2. Loopback iperf3 throughput with the agent / without, interleaved pairs.
bench-throughput: bench-build
	$(SUDO) $(BENCH_BIN)/netwatch_throughput $(BENCH_THROUGHPUT_ARGS)

# 3. Short connections/s with the agent / without, and lost events at 20k connections/s.
bench-churn: bench-build
	$(SUDO) $(BENCH_BIN)/netwatch_churn $(BENCH_CHURN_ARGS)

# 4. Decoder + aggregator replay (events/s per core) and instructions per event (callgrind).
bench-replay: bench-build
	$(BENCH_BIN)/netwatch_replay $(BENCH_REPLAY_ARGS)
	bash bench/callgrind_replay.sh $(BUILD)

# 5. Agent RSS idle and per 100k tracked loopback connections; kernel map memlock.
bench-memory: bench-build
	$(SUDO) $(BENCH_BIN)/netwatch_memory $(BENCH_MEMORY_ARGS)

# 6. /metrics render time per series, and p99 scrape latency at ~50k series under wrk.
bench-metrics: bench-build
	$(BENCH_BIN)/netwatch_render
	$(SUDO) $(BENCH_BIN)/netwatch_scrape $(BENCH_METRICS_ARGS)

# 7. Agent CPU per 100k events/s under iperf3 and churn.
bench-cpu: bench-build
	$(SUDO) $(BENCH_BIN)/netwatch_agent_cpu $(BENCH_CPU_ARGS)

# Restart cost: saving the agent's checkpoint at a stop and restoring it at the next start.
bench-restart: bench-build
	$(BENCH_BIN)/netwatch_checkpoint

# A few seconds of every benchmark (the same as ctest's bench_smoke): checks that they still work,
# measures nothing worth keeping.
bench-smoke: bench-build
	$(SUDO) bash bench/smoke.sh $(BUILD)

# Regenerates the checked-in vmlinux.h from the running kernel's BTF.
vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux/x86/vmlinux.h

clean:
	rm -rf $(BUILD)
