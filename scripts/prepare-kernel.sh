#!/usr/bin/env bash
# Mounts what netwatch's tests and the fallback probes expect and a fresh machine lacks:
# bpffs (pinned state) and tracefs (classic tracepoints). Idempotent.
set -euo pipefail
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
