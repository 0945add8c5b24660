#!/usr/bin/python3
"""Series and /metrics size of a netwatch binary at 6000 real flows (issue 18's before/after).

Usage (root, under the heavy-test lock): flock /tmp/netwatch-heavy.lock scripts/measure-series.py BINARY [AGENT FLAG...]

Starts BINARY's agent with its default budget flags, makes the traffic of
tests/e2e/series_budget_test.cpp (3000 connections, each from its own loopback source
127.10.x.y to its own destination 127.20.x.y on one port: 3000 peers each way), waits until the
agent has counted every connect, then prints the series (sample lines), the /metrics bytes and
the GET time (median of 5) of the text exposition. Only Debian's python3, no extra modules.
"""
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

SERVICE_PORT = 63651
AGENT_PORT = 63652
CONNECTIONS = 3000


def address(net, i):
    return "127.%d.%d.%d" % (net, i // 250, i % 250 + 1)


def get_metrics():
    start = time.monotonic()
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % AGENT_PORT, timeout=30) as r:
        body = r.read()
    return body, time.monotonic() - start


def connects(body, port):
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("netwatch_tcp_connects_total{") and 'port="%d"' % port in line and 'result="ok"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: measure-series.py BINARY [AGENT FLAG...]: the netwatch binary to measure")
    binary = os.path.abspath(sys.argv[1])
    pin_dir = "/sys/fs/bpf/nwmeasure-%d" % os.getpid()
    agent = subprocess.Popen([binary, "agent", "--listen", "127.0.0.1:%d" % AGENT_PORT, "--status-interval", "0",
                              "--publish-interval", "200ms", "--pin-dir", pin_dir] + sys.argv[2:])
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/healthz" % AGENT_PORT, timeout=2).read()
                break
            except OSError:
                if agent.poll() is not None:
                    sys.exit("the agent exited with %d" % agent.returncode)
                time.sleep(0.1)
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", SERVICE_PORT))
        listener.listen(4096)
        payload = b"q" * 1000
        for i in range(CONNECTIONS):
            client = socket.socket()
            client.bind((address(10, i), 0))
            client.connect((address(20, i), SERVICE_PORT))
            server, _ = listener.accept()
            client.sendall(payload)
            server.recv(len(payload), socket.MSG_WAITALL)
            server.sendall(payload)
            client.recv(len(payload), socket.MSG_WAITALL)
            client.close()
            server.close()
        listener.close()
        deadline = time.monotonic() + 60
        body, _ = get_metrics()
        while connects(body, SERVICE_PORT) < 2 * CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.5)
            body, _ = get_metrics()
        counted = connects(body, SERVICE_PORT)
        times = []
        for _ in range(5):
            body, seconds = get_metrics()
            times.append(seconds)
        lines = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
        stage = [l for l in lines if l.startswith("netwatch_series_budget_stage ")]
        print("%s: %d series (sample lines), %d bytes of /metrics, GET median %.1f ms, connects counted %d of %d%s" %
              (binary, len(lines), len(body), 1000 * statistics.median(times), counted, 2 * CONNECTIONS,
               ", " + stage[0] if stage else ""))
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        subprocess.run([binary, "cleanup", "--pin-dir", pin_dir], check=False)


if __name__ == "__main__":
    main()
