#!/usr/bin/env python3
"""What tests/container/run.sh reads from the agent, with ground truth passed in.

  scrape.py sum URL NAME LABEL=VALUE...     the sum of NAME's samples whose labels include these
  scrape.py counters URL OUT.json           every counter and histogram sample, saved
  scrape.py continued BEFORE.json URL       every saved sample is still there and not lower
  scrape.py cgroups URL PORT CLIENT SERVER  open connections to PORT: outbound ones in cgroup
                                            CLIENT, inbound ones in cgroup SERVER; prints counts
"""
import json
import re
import sys
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def samples(url):
    types, out = {}, []
    for line in get(url).splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            if m:
                out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return types, out


def family(name, types):
    for suffix in ("_bucket", "_count", "_sum", ""):
        if name.endswith(suffix) and name[: len(name) - len(suffix)] in types:
            return types[name[: len(name) - len(suffix)]]
    return None


def key(name, labels):
    return name + "{" + ",".join("%s=%s" % kv for kv in sorted(labels.items())) + "}"


def main(argv):
    cmd = argv[1]
    if cmd == "sum":
        want = dict(a.split("=", 1) for a in argv[4:])
        _, ss = samples(argv[2])
        print("%g" % sum(v for n, l, v in ss if n == argv[3] and want.items() <= l.items()))
    elif cmd == "counters":
        types, ss = samples(argv[2])
        kept = {key(n, l): v for n, l, v in ss if family(n, types) in ("counter", "histogram")}
        json.dump(kept, open(argv[3], "w"))
        print(len(kept))
    elif cmd == "continued":
        before = json.load(open(argv[2]))
        types, ss = samples(argv[3])
        after = {key(n, l): v for n, l, v in ss}
        bad = [k for k, v in before.items() if after.get(k, -1) < v]
        for k in bad[:20]:
            print("  %s: %g before, %s after" % (k, before[k], after.get(k, "gone")), file=sys.stderr)
        print("%d of %d samples went back or vanished" % (len(bad), len(before)))
        return 1 if bad else 0
    elif cmd == "cgroups":
        port, client, server = int(argv[3]), int(argv[4]), int(argv[5])
        conns = json.loads(get(argv[2] + "/api/v1/connections"))["connections"]
        out = [c for c in conns if c["direction"] == "outbound" and c["remote_port"] == port]
        inb = [c for c in conns if c["direction"] == "inbound" and c["local_port"] == port]
        wrong = [c for c in out if c["cgroup_id"] != client] + [c for c in inb if c["cgroup_id"] != server]
        for c in wrong:
            print("  wrong cgroup: %s" % json.dumps(c), file=sys.stderr)
        print("%d outbound, %d inbound, %d with another cgroup id" % (len(out), len(inb), len(wrong)))
        return 1 if wrong else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
