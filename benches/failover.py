#!/usr/bin/env python3
"""Failover time of a running `cluster/tern-local` cluster: kill -9 a node, measure the time
until an SMTP transaction through HAProxy gets its 250 again, restart the node, repeat.

    cluster/tern-local up 3
    benches/failover.py --kills 20          # prints each kill, then p50 / p99 / max
"""
import argparse, json, os, smtplib, statistics, subprocess, sys, time, uuid

HERE = os.path.dirname(os.path.abspath(__file__))
LOCAL = os.path.join(HERE, "..", "cluster", "tern-local")


def local(directory, *args):
    return subprocess.run([LOCAL, "--dir", directory, *args], check=True,
                          capture_output=True, text=True).stdout


def send(host, port, rcpt):
    s = smtplib.SMTP(host, port, timeout=10)
    try:
        s.sendmail("bench@example.net", [rcpt],
                   f"Message-ID: <{uuid.uuid4()}@bench>\r\nSubject: failover\r\n\r\nx\r\n")
    finally:
        try:
            s.quit()
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.environ.get("TERN_LOCAL_DIR", "/tmp/tern-local"))
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--rcpt", default="user1@load.test", help="an existing account")
    ap.add_argument("--deadline", type=float, default=30.0)
    a = ap.parse_args()
    info = json.load(open(os.path.join(a.dir, "cluster.json")))
    host, port = info["ports"]["smtp"]
    nodes = len(info["nodes"])
    send(host, port, a.rcpt)
    times = []
    for k in range(a.kills):
        victim = k % nodes + 1
        local(a.dir, "kill", str(victim))
        start = time.monotonic()
        while True:
            try:
                send(host, port, a.rcpt)
                break
            except Exception:
                if time.monotonic() - start > a.deadline:
                    sys.exit(f"no 250 within {a.deadline}s after killing node {victim}")
                time.sleep(0.02)
        took = time.monotonic() - start
        times.append(took)
        print(f"kill node {victim}: first 250 after {took * 1000:.0f} ms", flush=True)
        local(a.dir, "restart", str(victim))
        # Wait until the restarted node is ready again, so each kill starts from 3 healthy nodes.
        admin = info["nodes"][victim - 1]["admin"]
        t0 = time.monotonic()
        while admin and time.monotonic() - t0 < a.deadline:
            r = subprocess.run(["curl", "-sf", admin + "/health/ready"], capture_output=True)
            if r.returncode == 0:
                break
            time.sleep(0.05)
    times.sort()
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    print(f"kills {len(times)}: p50 {statistics.median(times) * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
