#!/usr/bin/env python3
"""Storage figures: bytes written per byte of mail, disk per byte of live mail, a whole-partition
snapshot shipped to a node that was down (time, MiB/s, peak memory of both ends), and backup and
restore speed. Real `tern` processes on loopback, real SMTP.

    benches/storage.py                  # a 2 GiB partition of 1 MiB messages (about 10 minutes)
    benches/storage.py --mib 256        # quicker
    benches/storage.py --json out.json  # the figures as JSON too

Needs the release binary (make build; $TERN_BIN or the cargo target dir) and HAProxy (make
test-deps) for the three-node part.
"""

import argparse
import base64
import concurrent.futures
import json
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "cluster"))

import ternlib  # noqa: E402
import ternlocal  # noqa: E402

USER = "bench@storage.test"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def write_bytes(pid: int) -> int:
    """Bytes the process caused to be written to storage (/proc/PID/io write_bytes)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def message(k: int, size: int) -> bytes:
    head = f"From: load@remote.test\r\nTo: {USER}\r\nSubject: storage {k}\r\n" \
           f"Message-ID: <storage-{k}-{time.monotonic_ns()}@bench>\r\n\r\n"
    # Base64 of random bytes, 76 to a line: what an attachment looks like, and about as
    # compressible (so RocksDB's LZ4 does not hide bytes that real mail would cost).
    lines = max(1, (size - len(head)) // 78)
    raw = base64.encodebytes(os.urandom(lines * 57)).replace(b"\n", b"\r\n")
    return head.encode() + raw


def ingest(addr, count: int, size: int, senders: int) -> int:
    """Sends `count` messages of about `size` bytes over `senders` connections; returns the
    bytes accepted (each got its 250)."""
    def connect():
        # Right after a node is killed, HAProxy may still hand a connection to it (and close
        # it) until its health check notices: try again for a while.
        deadline = time.monotonic() + 30
        while True:
            try:
                return smtplib.SMTP(*addr, timeout=120)
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def worker(ks):
        s = connect()
        total = 0
        for k in ks:
            data = message(k, size)
            s.sendmail("load@remote.test", [USER], data)
            total += len(data)
        s.quit()
        return total
    shards = [range(i, count, senders) for i in range(senders)]
    with concurrent.futures.ThreadPoolExecutor(senders) as pool:
        return sum(pool.map(worker, shards))


def one_node(work: Path, mib: int, size: int, senders: int) -> dict:
    out = {}
    t = ternlib.Tern(work / "node", partitions=1,
                     extra_config="[storage]\nsnapshot_entries = 1000000\n").start()
    try:
        t.cli("domain", "add", "storage.test")
        t.add_account(USER)
        pid = t.proc.pid
        for label, msg_size, total_mib in (("4KiB", 4096, min(64, mib)), ("large", size, mib)):
            count = max(1, total_mib * 1024 * 1024 // msg_size)
            before = write_bytes(pid)
            start = time.monotonic()
            accepted = ingest(("127.0.0.1", t.ports["smtp"]), count, msg_size, senders)
            took = time.monotonic() - start
            written = write_bytes(pid) - before
            out[f"node1_{label}_written_per_accepted"] = round(written / accepted, 2)
            out[f"node1_{label}_msgs_per_s"] = round(count / took, 1)
            print(f"1 node, {label}: {count} messages, {accepted / 2**20:.0f} MiB accepted, "
                  f"{written / 2**20:.0f} MiB written: {written / accepted:.2f} bytes/byte, "
                  f"{count / took:.0f} msg/s", flush=True)
        live = du(t.data_dir / "db")
        out["node1_live_mail_mib"] = round(live / 2**20)
        backup = work / "backup"
        start = time.monotonic()
        t.cli("backup", "create", str(backup))
        took = time.monotonic() - start
        size_b = du(backup)
        out["backup_mib_per_s"] = round(size_b / 2**20 / took, 1)
        print(f"backup create: {size_b / 2**20:.0f} MiB in {took:.1f}s "
              f"({size_b / 2**20 / took:.0f} MiB/s), node RSS {rss_kib(pid) // 1024} MiB",
              flush=True)
    finally:
        t.kill()
    start = time.monotonic()
    done = subprocess.run([ternlib.tern_bin(), "backup", "restore", str(backup),
                           "--data", str(work / "restored")], capture_output=True, text=True)
    took = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    out["restore_mib_per_s"] = round(size_b / 2**20 / took, 1)
    print(f"backup restore (verify included): {took:.1f}s ({size_b / 2**20 / took:.0f} MiB/s)",
          flush=True)
    shutil.rmtree(work / "restored", ignore_errors=True)
    shutil.rmtree(backup, ignore_errors=True)
    return out


def log_field(c, node: int, what: str, field: str = "ms") -> list[int]:
    """The integer `field` of every log line of `node` that contains `what`."""
    text = ANSI.sub("", c.log_path(node).read_text(errors="replace"))
    return [int(m.group(1)) for line in text.splitlines() if what in line
            for m in [re.search(rf"\b{field}=(\d+)", line)] if m]


def three_nodes(work: Path, mib: int, size: int, senders: int) -> dict:
    out = {}
    count = max(1, mib * 1024 * 1024 // size)
    entries = max(10, count // 2)       # two snapshots while node 3 is away
    # As in benches/compare: no DNS (SPF/DMARC lookups would time the machine's resolver).
    config = (f"[storage]\nsnapshot_entries = {entries}\nlog_keep_entries = 10\n"
              "[dns]\nservers = [\"127.0.0.1:9\"]\ntimeout_secs = 1\n"
              "[filter]\nspf = false\ndkim = false\ndmarc = false\n")
    with ternlocal.Cluster(work / "cluster", extra_config=config, direct_links=True) as c:
        c.up(3, partitions=1)
        c.cli(1, "domain", "add", "storage.test")
        c.cli(1, "account", "add", USER, "--password", ternlib.PASSWORD)
        c.wait_converged()
        small = min(64, mib) * 1024 * 1024 // 4096
        before = {i: write_bytes(c._node_proc(i)["pid"]) for i in (1, 2, 3)}
        start = time.monotonic()
        accepted = ingest(c.ports["smtp"], small, 4096, senders)
        took = time.monotonic() - start
        amp = {i: round((write_bytes(c._node_proc(i)["pid"]) - before[i]) / accepted, 2)
               for i in (1, 2, 3)}
        out["node3_4KiB_written_per_accepted"] = amp
        out["node3_4KiB_msgs_per_s"] = round(small / took, 1)
        print(f"3 nodes, 4KiB: {small} messages, {small / took:.0f} msg/s; bytes written per "
              f"byte accepted, per node: {amp}", flush=True)
        c.kill(3)
        before = {i: write_bytes(c._node_proc(i)["pid"]) for i in (1, 2)}
        start = time.monotonic()
        accepted = ingest(c.ports["smtp"], count, size, senders)
        took = time.monotonic() - start
        amp = {i: round((write_bytes(c._node_proc(i)["pid"]) - before[i]) / accepted, 2)
               for i in (1, 2)}
        out["node3_large_written_per_accepted"] = amp
        out["node3_large_msgs_per_s"] = round(count / took, 1)
        print(f"3 nodes (node 3 down): {count} messages, {accepted / 2**20:.0f} MiB "
              f"in {took:.0f}s ({count / took:.1f} msg/s); bytes written per byte accepted, "
              f"per node: {amp}", flush=True)
        peaks = {1: 0, 2: 0, 3: 0}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                for i in peaks:
                    proc = c._node_proc(i)
                    if proc and ternlocal.proc_state(proc):
                        try:
                            peaks[i] = max(peaks[i], rss_kib(proc["pid"]))
                        except OSError:
                            pass
                time.sleep(0.1)

        sampler = threading.Thread(target=sample)
        start = time.monotonic()
        c.restart(3)
        sampler.start()
        try:
            c.wait_converged(deadline=1800)
        finally:
            stop.set()
            sampler.join()
        took = time.monotonic() - start
        installed = log_field(c, 3, "snapshot installed")
        exported = [(b, ms) for i in (1, 2)
                    for b, ms in zip(log_field(c, i, "snapshot exported", "bytes"),
                                     log_field(c, i, "snapshot exported"))]
        snap_bytes = exported[-1][0] if exported else 0
        out["snapshot_mib"] = round(snap_bytes / 2**20)
        out["snapshot_export_ms"] = exported[-1][1] if exported else None
        out["catch_up_s"] = round(took, 1)
        out["catch_up_mib_per_s"] = round(snap_bytes / 2**20 / took, 1)
        out["install_ms"] = installed[-1] if installed else None
        out["peak_rss_mib"] = {i: p // 1024 for i, p in peaks.items()}
        print(f"snapshot of {out['snapshot_mib']} MiB: exported in {out['snapshot_export_ms']}"
              f" ms; node 3 caught up in {took:.1f}s ({out['catch_up_mib_per_s']} MiB/s), "
              f"install {out['install_ms']} ms; peak RSS during catch-up (MiB): "
              f"{out['peak_rss_mib']}", flush=True)
        for i in (1, 2, 3):
            out[f"node{i}_disk_mib"] = round(du(c.data_dir(i)) / 2**20)
        out["live_mail_mib"] = round(accepted / 2**20)
        print("disk per node after catch-up (MiB): "
              + ", ".join(f"node {i} {out[f'node{i}_disk_mib']}" for i in (1, 2, 3))
              + f" for {out['live_mail_mib']} MiB of mail", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=2048, help="size of the partition to build")
    ap.add_argument("--size-kib", type=int, default=1024, help="size of the large messages")
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--only", choices=["one", "three"])
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tern-storage-", dir=os.environ.get("TMPDIR", "/var/tmp")))
    figures = {"mib": a.mib, "message_kib": a.size_kib}
    try:
        if a.only in (None, "one"):
            figures.update(one_node(work, a.mib, a.size_kib * 1024, a.senders))
        if a.only in (None, "three"):
            figures.update(three_nodes(work, a.mib, a.size_kib * 1024, a.senders))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
