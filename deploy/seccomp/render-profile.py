#!/usr/bin/env python3
"""Renders helm/netwatch/files/seccomp-netwatch.json: the container-tools default seccomp profile
(containers-common's /usr/share/containers/seccomp.json, which podman and CRI-O use as
RuntimeDefault) with one change: bpf() and perf_event_open() are allowed without CAP_SYS_ADMIN,
as containerd (1.6.9+) and Docker (23+) allow them. The kernel still demands CAP_BPF and
CAP_PERFMON for what netwatch does with them; the profile only stops second-guessing the kernel.

Usage: render-profile.py [SOURCE] > helm/netwatch/files/seccomp-netwatch.json
"""
import json
import sys

OPENED = {"bpf", "perf_event_open"}

source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/containers/seccomp.json"
with open(source) as f:
    profile = json.load(f)

rules = []
for rule in profile["syscalls"]:
    names = [n for n in rule["names"] if n not in OPENED]
    if names:
        rules.append(dict(rule, names=names))
rules.append({"names": sorted(OPENED), "action": "SCMP_ACT_ALLOW", "args": [],
              "comment": "netwatch: the kernel checks CAP_BPF and CAP_PERFMON itself", "includes": {},
              "excludes": {}})
profile["syscalls"] = rules
json.dump(profile, sys.stdout, indent=1)
sys.stdout.write("\n")
