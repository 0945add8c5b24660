#!/usr/bin/env python3
"""Turns the DaemonSet that `helm template` rendered into the Pod a kubelet would run from it, for
`podman kube play`. The container's securityContext, volumes, mounts, args and env stay as the
chart rendered them; only what podman cannot take is changed, each change printed to stderr as
"change: what -- why it hides no defect". Reads the rendered chart on stdin, writes the Pod.

Usage: pod_from_chart.py NAME --host-path CHART_PATH=TEST_PATH ... [--seccomp-localhost] < chart.yaml
"""
import argparse
import sys

import yaml


def change(text):
    print("change: " + text, file=sys.stderr)


args = argparse.ArgumentParser()
args.add_argument("name")
args.add_argument("--host-path", action="append", default=[], metavar="CHART_PATH=TEST_PATH")
args.add_argument("--node-name", default="podman-node")
opts = args.parse_args()

daemonsets = [d for d in yaml.safe_load_all(sys.stdin) if d and d.get("kind") == "DaemonSet"]
if len(daemonsets) != 1:
    sys.exit("expected one DaemonSet in the rendered chart, found %d" % len(daemonsets))
template = daemonsets[0]["spec"]["template"]
spec = template["spec"]

change("DaemonSet -> Pod %s from its pod template -- podman 4.3 plays Pods, not DaemonSets; "
       "a kubelet runs exactly this template" % opts.name)
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": opts.name, "labels": template["metadata"].get("labels", {}),
                    "annotations": dict(template["metadata"].get("annotations") or {})},
       "spec": spec}

moved = dict(p.split("=", 1) for p in opts.host_path)
for volume in spec.get("volumes", []):
    path = volume.get("hostPath", {}).get("path")
    if path in moved:
        volume["hostPath"]["path"] = moved[path]
        change("volume %s: host path %s -> %s (mounted at the same place in the container) -- %s" % (
            volume["name"], path, moved[path],
            "a bpffs of the test's own: this host's /sys/fs/bpf belongs to other tests running beside it"
            if volume["name"] == "bpffs" else
            "this host runs no kubelet, so it has no such directory; the test's stands in for it"))

for c in spec["containers"]:
    for probe in ("livenessProbe", "readinessProbe"):
        if probe in c:
            del c[probe]
            change("container %s: %s removed -- podman would run it as curl inside the image, which "
                   "has no curl, scheduled by systemd, which this host does not run; the test probes "
                   "/healthz from the host on the pod's address, as a kubelet does" % (c["name"], probe))
    if c.get("ports"):
        del c["ports"]
        change("container %s: ports removed -- podman 4.3 publishes a containerPort on the host "
               "(0.0.0.0:port, which other agents on this host use), a kubelet never does; in "
               "Kubernetes containerPort is informational and the pod is reached on its own "
               "address, as the test does" % c["name"])
    for env in c.get("env", []):
        ref = env.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if ref == "spec.nodeName":
            del env["valueFrom"]
            env["value"] = opts.node_name
            change("container %s: env %s from fieldRef spec.nodeName -> the literal %r -- podman 4.3 "
                   "resolves no spec.* fieldRef; a kubelet puts the node's name there"
                   % (c["name"], env["name"], opts.node_name))
    seccomp = c.get("securityContext", {}).get("seccompProfile", {})
    if seccomp.get("type") == "Localhost":
        key = "container.seccomp.security.alpha.kubernetes.io/" + c["name"]
        pod["metadata"]["annotations"][key] = "localhost/" + seccomp["localhostProfile"]
        change("container %s: seccompProfile Localhost %s also given as the annotation %s -- podman "
               "4.3 reads only the annotation (with --seccomp-profile-root); the profile is the same "
               "file" % (c["name"], seccomp["localhostProfile"], key))

yaml.safe_dump(pod, sys.stdout, sort_keys=False)
