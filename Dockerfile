# syntax=docker/dockerfile:1
# netwatch agent image: Debian 12 (bookworm), the distribution CI builds and tests on.
# Build: docker build -t netwatch:dev .   (from the repository root, with a registry)
#    or: make image                         (podman; makes the base with mmdebstrap when no
#                                            registry answers: scripts/image-base.sh)

# ---- build: the same install script and CMake build as `make` and CI -------------------------------
FROM debian:bookworm-slim AS build
WORKDIR /src
# Only the script first, so the package layer is cached across source changes.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
# The binary alone: the tests and benchmarks need root and a kernel, and run in CI, not here.
# Stripped: symbols are most of the binary and nothing at run time reads them (the embedded BPF
# object and its BTF are data, which strip keeps).
RUN cmake -S . -B build -G Ninja && cmake --build build --target netwatch && strip --strip-all build/netwatch
# The runtime stage installs exactly the packages whose libraries this binary loads.
RUN deploy/docker/runtime-packages.sh build/netwatch | tee build/runtime-packages.txt

# ---- runtime: the binary and its shared libraries, nothing else ------------------------------------
# tests/container builds this stage alone from the host's build (COPY --from=build /src/build/
# becomes COPY from a context holding the same two files): keep those two paths as they are.
FROM debian:bookworm-slim
COPY --from=build /src/build/runtime-packages.txt /tmp/runtime-packages.txt
# Today: libbpf1 libelf1 zlib1g libprometheus-cpp-core1.0 libcpp-httplib0.11 (with libssl3,
# libbrotli1) libmicrohttpd12 libgnutls30 libprotobuf32 libstdc++6 -- derived from the binary, so a new link in CMakeLists.txt follows.
RUN apt-get update -qq \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y -qq --no-install-recommends \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    /tmp/runtime-packages.txt
COPY --from=build /src/build/netwatch /usr/local/bin/netwatch
# Fails the build if a library the binary needs is still missing.
RUN ! ldd /usr/local/bin/netwatch | grep -q 'not found' && /usr/local/bin/netwatch --version
# UID 0 on purpose: capabilities granted to a container (CAP_BPF, CAP_PERFMON) are effective only
# for UID 0, since Kubernetes sets no ambient capabilities. The chart drops every other capability,
# and the agent drops those two as well once started, and forbids itself every file write.
USER 0:0
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/netwatch"]
CMD ["agent", "--listen", "0.0.0.0:9464"]
