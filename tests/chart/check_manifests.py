#!/usr/bin/env python3
"""Assertions on the chart's rendered manifests, its rules and its dashboard.

Prints one "ok - ..." or "FAIL - ..." line per assertion (run.sh counts them) and exits non-zero
when any failed. Subcommands:
  to-json FILE...                 rendered YAML -> JSON list of {source, doc} for the schema check
  check default|full FILE         security and wiring of a render with default or values-full.yaml
  self-test FILE                  the DaemonSet checks catch each privilege a mutation adds
  same-rules RENDER RULES_FILE    the PrometheusRule and the plain rules file hold the same groups
  contract RULES_FILE DASHBOARD   rules and dashboard use only the agent's metric contract
  dashboard-rules DASHBOARD       the dashboard's queries as a rules file, for promtool check rules
"""
import copy
import json
import re
import sys

import yaml

# The agent's metric contract (issue 3): names, and the labels a query may group or match on.
CONTRACT = {
    "netwatch_tcp_connects_total": "counter",
    "netwatch_tcp_connect_duration_seconds": "histogram",
    "netwatch_tcp_retransmits_total": "counter",
    "netwatch_tcp_segments_sent_total": "counter",
    "netwatch_tcp_rtt_seconds": "histogram",
    "netwatch_tcp_active_connections": "gauge",
    "netwatch_tcp_bytes_sent_total": "counter",
    "netwatch_tcp_bytes_received_total": "counter",
    "netwatch_events_lost_total": "counter",
    "netwatch_events_total": "counter",
    "netwatch_build_info": "gauge",
}
CONTRACT_LABELS = {"namespace", "pod", "container", "direction", "peer", "port", "result", "type", "version",
                   "le", "job", "instance", "node"}
BASE_CAPS = {"BPF", "PERFMON"}
JUSTIFIED_EXTRA_CAPS = {"SYS_RESOURCE"}  # values.yaml says when and why

passed = 0
failed = 0


def check(condition, name, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"FAIL - {name}" + (f": {detail}" if detail else ""))
    return condition


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


# ---- the DaemonSet's privileges ------------------------------------------------------------------

def daemonset_problems(ds, allowed_host_paths, extra_caps=frozenset()):
    """Every way the DaemonSet exceeds least privilege, as strings; empty when it does not.

    allowed_host_paths maps each host path the pod may mount to whether it may be writable."""
    problems = []
    pod = ds["spec"]["template"]["spec"]
    for field in ("hostPID", "hostNetwork", "hostIPC"):
        if pod.get(field):
            problems.append(f"{field} is set")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("the service account token is mounted")
    pod_sc = pod.get("securityContext") or {}
    if pod_sc.get("sysctls"):
        problems.append("pod sets sysctls")
    if pod.get("hostUsers") is False:
        pass  # a user namespace only reduces privilege
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for v in volumes.values():
        kinds = set(v) - {"name"}
        if kinds != {"hostPath"}:
            problems.append(f"volume {v['name']} is {sorted(kinds)}, not a hostPath")
            continue
        path = v["hostPath"]["path"]
        if path not in allowed_host_paths:
            problems.append(f"host path {path} is not one the agent needs")
    containers = pod.get("containers", []) + pod.get("initContainers", [])
    allowed_caps = BASE_CAPS | set(extra_caps)
    for c in containers:
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged") is not False:
            problems.append(f"{name}: privileged is not false")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem is not true")
        caps = sc.get("capabilities") or {}
        if caps.get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities do not drop ALL")
        added = set(caps.get("add") or [])
        if not added <= allowed_caps:
            problems.append(f"{name}: adds {sorted(added - allowed_caps)}")
        if sc.get("runAsUser") != 0:
            problems.append(f"{name}: runAsUser {sc.get('runAsUser')} (capabilities are effective only for 0)")
        if (sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: no seccomp profile")
        if sc.get("procMount") not in (None, "Default"):
            problems.append(f"{name}: procMount {sc.get('procMount')}")
        for m in c.get("volumeMounts", []):
            v = volumes.get(m["name"])
            if not v or "hostPath" not in v:
                continue
            path = v["hostPath"]["path"]
            writable = allowed_host_paths.get(path, False)
            if not m.get("readOnly") and not writable:
                problems.append(f"{name}: host path {path} is mounted writable")
            if m.get("mountPropagation") in ("Bidirectional",):
                problems.append(f"{name}: host path {path} propagates mounts back to the host")
    return problems


def check_daemonset(ds, *, port, cgroup, host_paths, extra_caps, priority_class, image, pin_dir, container_logs,
                    job_args=()):
    pod = ds["spec"]["template"]["spec"]
    problems = daemonset_problems(ds, host_paths, extra_caps)
    check(not problems, "DaemonSet is least privilege", "; ".join(problems))
    check(ds["spec"]["updateStrategy"]["type"] == "RollingUpdate", "DaemonSet updates with RollingUpdate")
    check(ds["spec"]["updateStrategy"]["rollingUpdate"].get("maxSurge") in (0, None),
          "DaemonSet never runs two agents on a node (maxSurge 0)")
    tolerations = pod.get("tolerations") or []
    check(bool(tolerations), "DaemonSet has tolerations", str(tolerations))
    check(pod.get("priorityClassName") == priority_class, f"priorityClassName is {priority_class!r}",
          str(pod.get("priorityClassName")))
    check(pod.get("nodeSelector", {}).get("kubernetes.io/os") == "linux", "agent runs on Linux nodes only")
    containers = pod["containers"]
    check(len(containers) == 1 and not pod.get("initContainers"), "one container, no init containers")
    c = containers[0]
    check(c["image"] == image, f"image is {image}", c["image"])
    args = c.get("args", [])
    # The pin directory lives on the writable bpffs mount, or pins nothing without one.
    # The container log links are passed when mounted (the agent's default would be beside the pod logs).
    logs = ["--container-log-dir", container_logs] if container_logs else []
    want = ["agent", "--listen", f"0.0.0.0:{port}", "--pod-log-dir", "/var/log/pods", *logs, "--cgroup-root", cgroup,
            "--pin-dir", pin_dir]
    check(args[: len(want)] == want, "agent arguments", str(args))
    check(list(job_args) == args[len(want):], "extra agent arguments follow", str(args[len(want):]))
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    check("/var/log/pods" in mounts and cgroup in mounts, "the pod log dir and cgroup root are mounted",
          str(sorted(mounts)))
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
          "NODE_NAME comes from the downward API")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("http-metrics") == port, f"container port http-metrics is {port}", str(ports))
    for probe in ("livenessProbe", "readinessProbe"):
        get = (c.get(probe) or {}).get("httpGet") or {}
        check(get.get("path") == "/healthz" and get.get("port") == "http-metrics",
              f"{probe} is an HTTP GET of /healthz on the metrics port", str(get))
    res = c.get("resources") or {}
    check(all(k in res.get(kind, {}) for kind in ("requests", "limits") for k in ("cpu", "memory")),
          "cpu and memory requests and limits are set", str(res))
    return c


def check_common(docs, selector_pod_labels):
    for d in docs:
        meta = d["metadata"]
        labels = meta.get("labels", {})
        check(labels.get("app.kubernetes.io/name") == "netwatch" and "helm.sh/chart" in labels,
              f"{d['kind']} {meta['name']} has the chart's labels")
        check(len(meta["name"]) <= 63, f"{d['kind']} {meta['name']} name fits 63 characters")
    services = by_kind(docs, "Service")
    check(len(services) == 1, "one Service")
    svc = services[0]
    sel = svc["spec"]["selector"]
    check(sel.items() <= selector_pod_labels.items(), "Service selects the agent pods", str(sel))
    check([p["targetPort"] for p in svc["spec"]["ports"]] == ["http-metrics"], "Service targets http-metrics")
    return svc


def check_dashboard(cm, label, value):
    check(cm["metadata"]["labels"].get(label) == value, f"dashboard ConfigMap has the sidecar label {label}={value}")
    (key, text), = cm["data"].items()
    try:
        dash = json.loads(text)
    except ValueError as e:
        check(False, "dashboard is JSON", str(e))
        return None
    check(key.endswith(".json"), "dashboard key ends in .json")
    titles = " | ".join(p["title"] for p in dash["panels"])
    for needle in ("RTT", "Retransmit ratio", "Connect latency", "Connect failure"):
        check(needle in titles, f"dashboard shows {needle}", titles)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    counters = [e for e in exprs if "netwatch_tcp_" in e and "_seconds_bucket" not in e and "by (namespace, pod)" not in e]
    check(all(("peer" in e and "pod" in e) for e in counters), "counter panels break down per workload and peer")
    histograms = [e for e in exprs if "_seconds_bucket" in e]
    check(histograms and all(("port" in e and "pod" in e) for e in histograms),
          "latency panels break down per workload and port (the histograms are per service)")
    return dash


def check_render(mode, path):
    docs = load(path)
    kinds = sorted(d["kind"] for d in docs)
    ds, = by_kind(docs, "DaemonSet")
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    check(ds["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(), "DaemonSet selector matches its pods")
    svc = check_common(docs, pod_labels)
    cms = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    if mode == "cleanup":
        c, = ds["spec"]["template"]["spec"]["containers"]
        check(c.get("args") == ["cleanup", "--pin-dir", "/sys/fs/bpf/netwatch", "--wait"],
              "cleanup mode runs netwatch cleanup --wait on the agent's pin dir", str(c.get("args")))
        check(not any(k in c for k in ("livenessProbe", "readinessProbe", "ports")),
              "cleanup mode serves nothing and is not probed")
        problems = daemonset_problems(ds, {"/sys/fs/bpf": True, "/sys/kernel/btf": False, "/sys/fs/cgroup": False,
                                           "/var/log/pods": False, "/var/log/containers": False})
        check(not problems, "cleanup mode keeps the agent's least privilege", "; ".join(problems))
        return
    if mode == "default":
        check(kinds == ["ConfigMap", "DaemonSet", "Service", "ServiceAccount"], "default objects", str(kinds))
        check_daemonset(ds, port=9464, cgroup="/sys/fs/cgroup",
                        host_paths={"/sys/fs/bpf": True, "/sys/kernel/btf": False, "/sys/fs/cgroup": False,
                                    "/var/log/pods": False, "/var/log/containers": False},
                        extra_caps=set(), priority_class=None, image="netwatch:0.1.0",
                        pin_dir="/sys/fs/bpf/netwatch", container_logs="/var/log/containers")
        added = ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["add"]
        check(sorted(added) == ["BPF", "PERFMON"], "default capabilities are exactly BPF and PERFMON", str(added))
        check(ds["spec"]["template"]["spec"]["tolerations"] == [{"operator": "Exists"}], "default tolerates every taint")
        sa, = by_kind(docs, "ServiceAccount")
        check(sa.get("automountServiceAccountToken") is False, "ServiceAccount does not mount its token")
        check(svc["spec"]["ports"][0]["port"] == 9464, "Service port 9464")
        check_dashboard(cms["release-name-netwatch-dashboard"], "grafana_dashboard", "1")
        for m in ds["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]:
            if m.get("readOnly"):
                check(m.get("recursiveReadOnly") == "IfPossible", f"{m['mountPath']} is recursively read-only")
    else:
        check(kinds == ["ConfigMap", "ConfigMap", "DaemonSet", "PrometheusRule", "Service", "ServiceMonitor"],
              "full objects", str(kinds))
        check_daemonset(ds, port=9500, cgroup="/sys/fs/cgroup/unified",
                        host_paths={"/sys/kernel/btf": False, "/sys/fs/cgroup/unified": False,
                                    "/var/log/pods": False, "/sys/kernel/tracing": False},
                        extra_caps={"SYS_RESOURCE"}, priority_class="system-node-critical",
                        image="registry.example.test/netwatch:1.2.3", pin_dir="", container_logs=None,
                        job_args=["--max-series", "20000"])
        pod = ds["spec"]["template"]["spec"]
        check(pod["serviceAccountName"] == "netwatch-sa", "an existing ServiceAccount is used")
        check(pod["tolerations"][0]["key"] == "dedicated", "tolerations come from values")
        check(pod_labels.get("team") == "network", "pod labels come from values")
        volumes = {v["hostPath"]["path"] for v in pod["volumes"]}
        check("/sys/fs/bpf" not in volumes and "/var/log/containers" not in volumes,
              "disabled host paths are not mounted", str(sorted(volumes)))
        check(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == "10%", "maxUnavailable from values")
        sm, = by_kind(docs, "ServiceMonitor")
        check(sm["metadata"]["namespace"] == "monitoring" and sm["metadata"]["labels"].get("release"),
              "ServiceMonitor namespace and labels from values")
        check(sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(),
              "ServiceMonitor selects the Service")
        check(sm["spec"]["namespaceSelector"]["matchNames"] == [svc["metadata"]["namespace"]],
              "ServiceMonitor looks in the Service's namespace")
        ep, = sm["spec"]["endpoints"]
        check(ep["port"] in [p["name"] for p in svc["spec"]["ports"]], "ServiceMonitor scrapes a Service port")
        relabel = ep.get("relabelings", [])
        check({"action": "replace", "targetLabel": "job", "replacement": "tcp-agent"} in relabel,
              "ServiceMonitor names the job after metrics.job", str(relabel))
        check(any(r.get("action") == "labeldrop" and re.fullmatch(r["regex"], "namespace")
                  and re.fullmatch(r["regex"], "pod") and re.fullmatch(r["regex"], "container") for r in relabel),
              "ServiceMonitor keeps the agent pod's namespace/pod/container off the series")
        check(ep.get("honorLabels") is False, "ServiceMonitor does not honor scraped job/instance")
        pr, = by_kind(docs, "PrometheusRule")
        rules = [r for g in pr["spec"]["groups"] for r in g["rules"]]
        names = [r["alert"] for r in rules]
        check("NetwatchTCPRttP99High" not in names and len(names) == 6, "a disabled alert is left out", str(names))
        check(all('job="tcp-agent"' in r["expr"] for r in rules), "rules select metrics.job")
        check(all("[2m]" in r["expr"] for r in rules if "rate(" in r["expr"]), "rules use alerts.rateWindow")
        ratio = next(r for r in rules if r["alert"] == "NetwatchTCPRetransmitRatioHigh")
        check(ratio["for"] == "30s" and "> 0.02" in ratio["expr"], "thresholds and for durations come from values")
        check(all(r["labels"].get("team") == "network" for r in rules), "alerts.labels on every alert")
        check(all(r["annotations"]["runbook_url"].endswith(r["alert"]) for r in rules), "runbook_url per alert")
        down = next(r for r in rules if r["alert"] == "NetwatchAgentDown")
        check(down["labels"]["severity"] == "critical", "severity from values")
        rules_cm = cms["nw-rules"]
        check(yaml.safe_load(rules_cm["data"]["netwatch-rules.yaml"]) == {"groups": pr["spec"]["groups"]},
              "rules ConfigMap and PrometheusRule hold the same rules")
        dash_cm = cms["nw-dashboard"]
        check(dash_cm["metadata"]["namespace"] == "grafana"
              and dash_cm["metadata"]["annotations"].get("grafana_folder") == "Network",
              "dashboard namespace and folder from values")
        check_dashboard(dash_cm, "grafana_dashboard_netwatch", "yes")


# ---- self-test: the privilege checks are not vacuous ---------------------------------------------

def self_test(path):
    docs = load(path)
    ds, = by_kind(docs, "DaemonSet")
    allowed = {"/sys/fs/bpf": True, "/sys/kernel/btf": False, "/sys/fs/cgroup": False,
               "/var/log/pods": False, "/var/log/containers": False}
    check(not daemonset_problems(ds, allowed), "self-test: the unmodified DaemonSet passes")

    def container(d):
        return d["spec"]["template"]["spec"]["containers"][0]

    def sc(d):
        return container(d)["securityContext"]

    mutations = {
        "privileged": lambda d: sc(d).update(privileged=True),
        "privilege escalation": lambda d: sc(d).update(allowPrivilegeEscalation=True),
        "writable root filesystem": lambda d: sc(d).pop("readOnlyRootFilesystem"),
        "SYS_ADMIN": lambda d: sc(d)["capabilities"]["add"].append("SYS_ADMIN"),
        "NET_ADMIN": lambda d: sc(d)["capabilities"]["add"].append("NET_ADMIN"),
        "no drop ALL": lambda d: sc(d)["capabilities"].pop("drop"),
        "no seccomp": lambda d: sc(d).pop("seccompProfile"),
        "hostPID": lambda d: d["spec"]["template"]["spec"].update(hostPID=True),
        "hostNetwork": lambda d: d["spec"]["template"]["spec"].update(hostNetwork=True),
        "host root mounted": lambda d: d["spec"]["template"]["spec"]["volumes"].append(
            {"name": "root", "hostPath": {"path": "/"}}),
        "cgroup mount writable": lambda d: next(m for m in container(d)["volumeMounts"]
                                                if m["name"] == "cgroup").pop("readOnly"),
        "pod logs writable": lambda d: next(m for m in container(d)["volumeMounts"]
                                            if m["name"] == "pod-logs").update(readOnly=False),
        "token mounted": lambda d: d["spec"]["template"]["spec"].pop("automountServiceAccountToken"),
        "privileged init container": lambda d: d["spec"]["template"]["spec"].update(
            initContainers=[{"name": "init", "image": "x", "securityContext": {"privileged": True}}]),
    }
    for name, mutate in mutations.items():
        bad = copy.deepcopy(ds)
        mutate(bad)
        check(bool(daemonset_problems(bad, allowed)), f"self-test: catches {name}")


# ---- rules and dashboard --------------------------------------------------------------------------

def same_rules(render_path, rules_path):
    pr, = by_kind(load(render_path), "PrometheusRule")
    with open(rules_path) as f:
        plain = yaml.safe_load(f)
    check(plain == {"groups": pr["spec"]["groups"]},
          "PrometheusRule (defaults) and deploy/prometheus/netwatch-rules.yaml hold the same rules")
    names = [r["alert"] for g in plain["groups"] for r in g["rules"]]
    want = ["NetwatchTCPRetransmitRatioHigh", "NetwatchTCPRetransmitSpike", "NetwatchTCPConnectFailureRatioHigh",
            "NetwatchTCPRttP99High", "NetwatchAgentLosingEvents", "NetwatchAgentDown", "NetwatchAgentAbsent"]
    check(names == want, "every alert is in the rules file", str(names))


METRIC = re.compile(r"\bnetwatch_[a-z_]+")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!=|!~|=)\s*\"")


def used_names(expr):
    metrics = set(METRIC.findall(expr))
    labels = {l.strip() for g in GROUPING.findall(expr) for l in g.split(",") if l.strip()}
    labels |= set(MATCHER.findall(expr))
    return metrics, labels


def contract(rules_path, dashboard_path):
    with open(rules_path) as f:
        rules = yaml.safe_load(f)
    with open(dashboard_path) as f:
        dash = json.load(f)
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    exprs += [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if v.get("definition")]
    known = set()
    for name, kind in CONTRACT.items():
        known |= {name + s for s in ("", "_bucket", "_count", "_sum")} if kind == "histogram" else {name}
    metrics, labels = set(), set()
    for e in exprs:
        m, l = used_names(e)
        metrics |= m
        labels |= l
    check(metrics <= known, "rules and dashboard use only contract metrics", str(sorted(metrics - known)))
    check(labels <= CONTRACT_LABELS, "rules and dashboard use only contract labels", str(sorted(labels - CONTRACT_LABELS)))
    for name, kind in CONTRACT.items():
        if kind == "histogram":
            # A Prometheus with native histograms has the bare name and no _bucket/_count/_sum; one
            # without, the reverse: every query reads both forms.
            one_form = [e for e in exprs if name in e and
                        bool(re.search(rf"\b{name}\b(?!_)", e)) != bool(re.search(rf"\b{name}_(bucket|count|sum)\b", e))]
            check(not one_form, f"{name} is queried in both forms, classic and native", str(one_form))
            # The histograms are per service: a query by peer would find one empty peer.
            by_peer = [e for e in exprs if name in e and "peer" in used_names(e)[1]]
            check(not by_peer, f"{name} is not grouped or matched by peer", str(by_peer))


def dashboard_rules(dashboard_path):
    with open(dashboard_path) as f:
        dash = json.load(f)
    rules = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"].replace("$__rate_interval", "5m")
            expr = re.sub(r"\$\w+", ".*", expr)
            rules.append({"record": f"dashboard:panel{p['id']}:{t['refId']}", "expr": expr})
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sys.stdout, sort_keys=False)


def to_json(paths):
    out = [{"source": p, "doc": d} for p in paths for d in load(p)]
    json.dump(out, sys.stdout)


def main(argv):
    cmd = argv[1]
    if cmd == "to-json":
        to_json(argv[2:])
        return 0
    if cmd == "dashboard-rules":
        dashboard_rules(argv[2])
        return 0
    if cmd == "check":
        check_render(argv[2], argv[3])
    elif cmd == "self-test":
        self_test(argv[2])
    elif cmd == "same-rules":
        same_rules(argv[2], argv[3])
    elif cmd == "contract":
        contract(argv[2], argv[3])
    else:
        print(f"unknown subcommand {cmd}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
