#!/usr/bin/env python3
"""Scale-out figures: what an idle Raft group costs a node (64, 256 and 1,024 partitions on
three nodes), and what growing a loaded cluster from three nodes to five costs: the time and
MiB/s of moving partitions of a given size, SMTP and IMAP throughput and p99 while the replicas
move against the same load without a move, and disk per node before and after. Real `tern`
processes on loopback behind HAProxy, real SMTP and IMAP (tern-load).

    benches/scale.py                        # both parts: about 12 minutes
    benches/scale.py --only idle --groups 64,256
    benches/scale.py --only move --mib 256  # partitions of 256 MiB instead of 1 GiB
    benches/scale.py --json out.json        # the figures as JSON too

Needs the release binaries (make build; $TERN_BIN, or the cargo target dir, for tern and
tern-load) and HAProxy (make test-deps).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "cluster"))
sys.path.insert(0, str(HERE))

import ternlib  # noqa: E402
import ternlocal  # noqa: E402
from storage import du, message, rss_kib  # noqa: E402

DOMAIN = "scale.test"
PASSWORD = "scale-bench-password"
TICK = os.sysconf("SC_CLK_TCK")
# As in benches/compare: no DNS (SPF/DMARC lookups would time the machine's resolver).
NO_DNS = ("[dns]\nservers = [\"127.0.0.1:9\"]\ntimeout_secs = 1\n"
          "[filter]\nspf = false\ndkim = false\ndmarc = false\n")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])        # utime + stime


def io_bytes(pid: int) -> int:
    """Bytes the process read and wrote through system calls (sockets included)."""
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(io["rchar"]) + int(io["wchar"])


def pids(c: ternlocal.Cluster) -> dict[int, int]:
    return {i: c._node_proc(i)["pid"] for i in c.members}


def load_bin() -> str:
    found = shutil.which("tern-load")
    beside = Path(ternlib.tern_bin()).with_name("tern-load")
    return str(beside) if beside.exists() else (found or "tern-load")


# --- idle cost per group -------------------------------------------------------------------------

def idle_cost(work: Path, groups: list[int], seconds: int) -> dict:
    out = {}
    for count in groups:
        with ternlocal.Cluster(work / f"idle-{count}", extra_config=NO_DNS,
                               direct_links=True) as c:
            start = time.monotonic()
            c.up(3, partitions=count)
            c.wait_converged(deadline=600)
            up_s = time.monotonic() - start
            time.sleep(5)   # elections and leader balancing settle
            nodes = pids(c)
            before = {i: (cpu_ticks(p), io_bytes(p)) for i, p in nodes.items()}
            time.sleep(seconds)
            after = {i: (cpu_ticks(p), io_bytes(p)) for i, p in nodes.items()}
            cpu = {i: (after[i][0] - before[i][0]) / TICK / seconds * 100 for i in nodes}
            io = {i: (after[i][1] - before[i][1]) / seconds for i in nodes}
            rss = {i: rss_kib(p) / 1024 for i, p in nodes.items()}
            row = {
                "up_and_converged_s": round(up_s, 1),
                "cpu_percent_of_core": {i: round(v, 1) for i, v in cpu.items()},
                "rss_mib": {i: round(v) for i, v in rss.items()},
                "io_kib_per_s": {i: round(v / 1024, 1) for i, v in io.items()},
                # Every leader sends each of its two followers a heartbeat per interval.
                "heartbeats_per_s_cluster": round((count + 1) * 2 * 1000 / 200),
            }
            out[str(count)] = row
            print(f"{count} partitions on 3 nodes: up and converged in {up_s:.0f}s; idle per "
                  f"node: CPU {row['cpu_percent_of_core']} % of a core, RSS "
                  f"{row['rss_mib']} MiB, syscall I/O {row['io_kib_per_s']} KiB/s", flush=True)
    if len(groups) > 1:
        lo, hi = str(min(groups)), str(max(groups))
        extra = max(groups) - min(groups)
        mean = lambda d: sum(d.values()) / len(d)  # noqa: E731
        out["per_group"] = {
            "cpu_percent_of_core": round((mean(out[hi]["cpu_percent_of_core"])
                                          - mean(out[lo]["cpu_percent_of_core"])) / extra, 4),
            "rss_kib": round((mean(out[hi]["rss_mib"]) - mean(out[lo]["rss_mib"]))
                             * 1024 / extra, 1),
            "io_bytes_per_s": round((mean(out[hi]["io_kib_per_s"])
                                     - mean(out[lo]["io_kib_per_s"])) * 1024 / extra, 1),
        }
        print(f"per group and node (from {lo} to {hi}): {out['per_group']}", flush=True)
    return out


# --- growing 3 -> 5 under load -------------------------------------------------------------------

def fill(c: ternlocal.Cluster, accounts: list[str], mib_per_partition: int, partitions: int,
         senders: int = 4) -> int:
    """Sends 1 MiB messages round-robin to `accounts` until about `mib_per_partition` MiB per
    partition went in; returns the bytes accepted."""
    import concurrent.futures
    import smtplib
    count = mib_per_partition * partitions

    def worker(ks):
        s = smtplib.SMTP(*c.ports["smtp"], timeout=120)
        total = 0
        for k in ks:
            to = accounts[k % len(accounts)]
            data = message(k, 1 << 20).replace(b"bench@storage.test", to.encode(), 1)
            s.sendmail("load@remote.test", [to], data)
            total += len(data)
        s.quit()
        return total
    with concurrent.futures.ThreadPoolExecutor(senders) as pool:
        return sum(pool.map(worker, [range(i, count, senders) for i in range(senders)]))


def tern_load(c: ternlocal.Cluster, workload: str, users: int, *args: str) -> dict:
    """One tern-load run against HAProxy; its JSON report."""
    report = c.dir / f"load-{workload}-{time.monotonic_ns()}.json"
    (host, smtp), (_, imap) = c.ports["smtp"], c.ports["imap"]
    cmd = [load_bin(), "--workload", workload, "--host", host, "--smtp-port", str(smtp),
           "--imap-port", str(imap), "--users", str(users), "--domain", DOMAIN,
           "--password", PASSWORD, "--json", str(report), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 and not report.exists():
        raise RuntimeError(f"tern-load {workload} failed: {done.stdout[-2000:]}{done.stderr}")
    return json.loads(report.read_text())


def load_figures(c: ternlocal.Cluster, users: int, smtp_messages: int, imap_secs: int) -> dict:
    """SMTP (4 KiB, 10 senders) then IMAP mixed (20 clients): rates and p99s."""
    smtp = tern_load(c, "smtp", users, "--senders", "10", "--messages", str(smtp_messages),
                     "--size", "4096", "--readers", "2")["results"]
    imap = tern_load(c, "imap", users, "--clients", "20", "--duration", str(imap_secs))["results"]
    return {"smtp_accepted_per_s": round(smtp["accepted_per_s"], 1),
            "smtp_failed": smtp["failed"],
            "smtp_p99_ms": round(smtp["smtp_transaction"]["p99_ms"], 1),
            "imap_ops_per_s": round(imap["ops_per_s"], 1),
            "imap_failed_sessions": imap["failed_sessions"],
            "imap_p99_ms": {op: round(v["p99_ms"], 1) for op, v in imap["ops"].items()
                            if op in ("select", "fetch-headers", "store", "search")}}


def status(c: ternlocal.Cluster) -> dict:
    return c.cluster_status()


def grow(work: Path, mib: int, partitions: int, users: int, rate: int) -> dict:
    out = {"partitions": partitions, "mib_per_partition": mib, "move_rate_limit": rate}
    config = f"move_rate_limit = {rate}\n" + NO_DNS
    with ternlocal.Cluster(work / "grow", extra_config=config, direct_links=True) as c:
        c.up(3, partitions=partitions, spare=2)
        c.cli(1, "domain", "add", DOMAIN)
        accounts = [f"user{k}@{DOMAIN}" for k in range(1, users + 1)]
        for a in accounts:
            c.cli(1, "account", "add", a, "--password", PASSWORD)
        c.wait_converged()
        start = time.monotonic()
        accepted = fill(c, accounts, mib, partitions)
        took = time.monotonic() - start
        print(f"filled: {accepted / 2**20:.0f} MiB in {took:.0f}s", flush=True)
        c.wait_converged(deadline=1800)
        out["mail_mib"] = round(accepted / 2**20)
        out["disk_mib_3_nodes"] = {i: round(du(c.data_dir(i)) / 2**20) for i in c.members}
        print(f"disk per node with 3 nodes (MiB): {out['disk_mib_3_nodes']}", flush=True)
        out["load_without_move"] = load_figures(c, users, 4000, 20)
        print(f"load without a move: {out['load_without_move']}", flush=True)

        # Two joins; the moves run while the same load does. A move of group g to node n
        # starts when n first shows as a learner of g and ends when n votes in g.
        first = ternlocal.group_leaders(status(c))
        voters0 = {g: set((v or {}).get("voters", [])) for g, v in first.items()}
        moves: dict[tuple[int, int], dict] = {}
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                try:
                    leaders = ternlocal.group_leaders(status(c))
                except ternlocal.ClusterError:
                    time.sleep(0.5)
                    continue
                now = time.monotonic()
                for g, v in leaders.items():
                    if g == 0 or not v:
                        continue
                    for n in v.get("learners", []):
                        if n not in voters0.get(g, set()):
                            moves.setdefault((g, n), {"start": now, "bytes": v.get("bytes", 0)})
                    for n in v.get("voters", []):
                        m = moves.get((g, n))
                        if m is not None and "end" not in m:
                            m["end"] = now
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        grow_start = time.monotonic()
        c.join(wait=False)
        c.join(wait=False)
        during = load_figures(c, users, 4000, 20)
        out["load_during_move"] = during
        print(f"load during the moves: {during}", flush=True)
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            rebalance = status(c).get("rebalance", {})
            if not rebalance.get("active"):
                break
            time.sleep(1)
        out["rebalance_s"] = round(time.monotonic() - grow_start, 1)
        stop.set()
        watcher.join()
        done = [m for m in moves.values() if "end" in m]
        moved = sum(m["bytes"] for m in done)
        out["moves"] = len(done)
        out["moved_mib"] = round(moved / 2**20)
        out["moved_mib_per_s"] = round(moved / 2**20 / out["rebalance_s"], 1)
        if done:
            longest = max(done, key=lambda m: m["end"] - m["start"])
            secs = longest["end"] - longest["start"]
            out["move_of_largest_s"] = round(secs, 1)
            out["move_mib"] = round(longest["bytes"] / 2**20)
            out["move_mib_per_s"] = round(longest["bytes"] / 2**20 / secs, 1)
        print(f"rebalance 3 -> 5 done in {out['rebalance_s']}s: {len(done)} replicas, "
              f"{out['moved_mib']} MiB ({out['moved_mib_per_s']} MiB/s overall); the longest "
              f"move: {out.get('move_mib')} MiB in {out.get('move_of_largest_s')}s "
              f"({out.get('move_mib_per_s')} MiB/s)", flush=True)
        c.wait_converged(deadline=1800)
        time.sleep(10)  # released replicas are compacted in the background
        out["disk_mib_5_nodes"] = {i: round(du(c.data_dir(i)) / 2**20) for i in c.members}
        out["partitions_held_5_nodes"] = ternlocal.Cluster.partitions_held(status(c))
        print(f"disk per node with 5 nodes (MiB): {out['disk_mib_5_nodes']}; partitions held: "
              f"{out['partitions_held_5_nodes']}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["idle", "move"])
    ap.add_argument("--groups", default="64,256,1024", help="partition counts for the idle part")
    ap.add_argument("--idle-secs", type=int, default=20)
    ap.add_argument("--mib", type=int, default=1024, help="MiB of mail per partition to move")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--rate", type=int, default=0, help="move_rate_limit, MiB/s (0: none)")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tern-scale-", dir=os.environ.get("TMPDIR", "/var/tmp")))
    figures = {}
    try:
        if a.only in (None, "idle"):
            groups = [int(g) for g in a.groups.split(",")]
            figures["idle"] = idle_cost(work, groups, a.idle_secs)
        if a.only in (None, "move"):
            figures["grow"] = grow(work, a.mib, a.partitions, a.users, a.rate)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
