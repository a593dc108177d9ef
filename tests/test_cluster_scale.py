"""Scale-out: a 3-node cluster under SMTP and IMAP load through HAProxy grows to 5 nodes (two
`join`s), then drains one node back to 4. The moves must cost no SMTP transaction and no IMAP
session; afterwards every acknowledged message is in its INBOX exactly once, the replicas of
every partition agree, every partition has three voters, and each node holds its share (3/N of
the partitions, give or take one).

A second test removes a killed node with `remove --dead` and checks that every partition gets
its three replicas back from the survivors. The third, in three variants, joins a fourth node
with snapshots slowed to 1 MiB/s and, while a partition is on its way to it, kills the receiver,
kills the sender (the partition's leader) or cuts the receiver off; once the cluster has settled
on the new placement, the fault checker (cluster/jepsen.py) reads every INBOX on every node.
"""

import contextlib
import imaplib
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))

import jepsen  # noqa: E402
import ternlocal  # noqa: E402

PARTITIONS = 8
SETTLE = 120.0

_UNAVAILABLE = ternlocal.unavailable()
needs_cluster = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))


class ImapLoad:
    """Readers that log in through HAProxy, select INBOX, fetch the newest message's headers and
    log out, over and over; every session that fails is recorded."""

    def __init__(self, cluster: ternlocal.Cluster, accounts: list[str], readers: int = 2):
        self.addr = cluster.ports["imap"]
        self.accounts = accounts
        self.readers = readers
        self.stop = threading.Event()
        self.sessions = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def _session(self, account: str) -> None:
        imap = imaplib.IMAP4(*self.addr, timeout=jepsen.IMAP_TIMEOUT)
        try:
            imap.login(account, jepsen.PASSWORD)
            typ, data = imap.select("INBOX", readonly=True)
            if typ != "OK":
                raise imaplib.IMAP4.error(f"SELECT: {typ} {data}")
            count = int(data[0])
            if count:
                typ, data = imap.fetch(str(count), "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                if typ != "OK":
                    raise imaplib.IMAP4.error(f"FETCH: {typ} {data}")
        except BaseException:
            imap.shutdown()
            raise
        imap.logout()  # closes the connection

    def _reader(self, k: int) -> None:
        n = k
        while not self.stop.is_set():
            account = self.accounts[n % len(self.accounts)]
            n += 1
            try:
                self._session(account)
                with self.lock:
                    self.sessions += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {account}: "
                                         f"{type(e).__name__}: {e}"[:300])
                self.stop.wait(0.1)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._reader, args=(k,), daemon=True)
                        for k in range(self.readers)]
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(jepsen.IMAP_TIMEOUT + 5)


def held_by(cluster: ternlocal.Cluster) -> dict[int, int]:
    return ternlocal.Cluster.partitions_held(cluster.cluster_status())


def wait_spread(cluster: ternlocal.Cluster, deadline: float = SETTLE) -> dict[int, int]:
    """Waits until every member holds 3/N of the partitions (+-1), the groups have three voters
    each and no other replica; returns member -> partitions held."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        try:
            status = cluster.cluster_status()
            held = ternlocal.Cluster.partitions_held(status)
            leaders = ternlocal.group_leaders(status)
            share = 3 * PARTITIONS / len(cluster.members)
            spread = (sorted(held) == sorted(cluster.members)
                      and all(abs(h - share) <= 1 for h in held.values()))
            placed = all(v and len(v.get("voters", [])) == 3 and not v.get("learners")
                         for g, v in leaders.items() if g != 0)
            if spread and placed and len(leaders) == PARTITIONS + 1:
                return held
            last = (held, {g: (v or {}).get("voters") for g, v in leaders.items()})
        except ternlocal.ClusterError as e:
            last = str(e)
        time.sleep(0.5)
    raise AssertionError(f"partitions not spread over {cluster.members} within {deadline:.0f}s: "
                         f"{last}")


def check_inboxes(cluster: ternlocal.Cluster, run: jepsen.Run) -> None:
    """Every acknowledged message once, nothing unknown, read through HAProxy (any node: the
    session is relayed to where the account's mail is)."""
    host, port = cluster.ports["imap"]
    acked = {s.mid for s in run.sends if s.acked}
    known = {s.mid: s.account for s in run.sends}
    for account in run.accounts:
        inbox = jepsen.read_inbox(host, port, account)
        mids = [m.mid for m in inbox.messages]
        duplicated = {m for m in mids if mids.count(m) > 1}
        assert not duplicated, f"{account}: duplicated {sorted(duplicated)[:5]}"
        stray = [m for m in mids if known.get(m) != account]
        assert not stray, f"{account}: unknown or misdelivered {stray[:5]}"
        missing = {m for m in acked if known[m] == account} - set(mids)
        assert not missing, f"{account}: acknowledged but missing {sorted(missing)[:5]}"


@needs_cluster
def test_grow_to_five_and_drain_to_four_under_load_loses_nothing(tmp_path):
    with ternlocal.Cluster(tmp_path / "cluster", log=print) as c:
        c.up(3, partitions=PARTITIONS, spare=2)
        accounts = jepsen.setup(c, 6)
        c.wait_converged(SETTLE)
        run = jepsen.Run(c, accounts, senders=2, seed=7, log=print, interval=0.02)
        senders = [threading.Thread(target=run._sender, args=(k,), daemon=True) for k in range(2)]
        imap = ImapLoad(c, accounts)
        for t in senders:
            t.start()
        imap.start()
        try:
            before = held_by(c)
            assert before == {1: PARTITIONS, 2: PARTITIONS, 3: PARTITIONS}, before
            c.join()
            c.join()
            assert sorted(c.members) == [1, 2, 3, 4, 5]
            five = wait_spread(c)
            c.drain(2)
            assert sorted(c.members) == [1, 3, 4, 5]
            four = wait_spread(c)
            sessions_during_moves = imap.sessions
        finally:
            run.stop.set()
            imap.finish()
            for t in senders:
                t.join(30)
        print(f"held with 5 nodes {five}, with 4 {four}; {len(run.sends)} SMTP transactions, "
              f"{sessions_during_moves} IMAP sessions during the moves")
        failed = [s for s in run.sends if not s.acked]
        assert [s.error for s in failed] == [], f"{len(failed)} SMTP transactions failed"
        assert imap.failures == [], f"{len(imap.failures)} IMAP sessions failed"
        assert sum(1 for s in run.sends if s.acked) > 0 and sessions_during_moves > 0
        c.wait_converged(SETTLE)
        check_inboxes(c, run)


@needs_cluster
def test_remove_dead_restores_three_replicas_from_the_survivors(tmp_path):
    with ternlocal.Cluster(tmp_path / "cluster", log=print) as c:
        c.up(3, partitions=PARTITIONS, spare=1)
        accounts = jepsen.setup(c, 4)
        run = jepsen.Run(c, accounts, senders=1, seed=11, log=print)
        for k in range(20):
            s = run._next(0, accounts[k % len(accounts)], None)
            jepsen.smtp_send(c.ports["smtp"], s.account, s.mid, s.subject)
            s.acked = True
        c.join()
        wait_spread(c)
        c.kill(3)
        with pytest.raises(ternlocal.ClusterError, match="does not answer"):
            c.cli(1, "cluster", "remove", "3")
        c.cli(1, "cluster", "remove", "3", "--dead")
        c.info["members"] = [1, 2, 4]
        held = wait_spread(c)
        assert held == {1: PARTITIONS, 2: PARTITIONS, 4: PARTITIONS}, held
        c.wait_converged(SETTLE, nodes=[1, 2, 4])
        check_inboxes(c, run)


# --- faults in the middle of a move -------------------------------------------------------------

# Snapshots go at 1 MiB/s, so that a move of a partition holding a few MiB lasts seconds; the
# log is purged early, so that a new replica gets a snapshot rather than the whole log.
SLOW_MOVES = "move_rate_limit = 1\n[storage]\nsnapshot_entries = 4\nlog_keep_entries = 2\n"
BULK = 256 * 1024


def preload(c: ternlocal.Cluster, run: jepsen.Run, per_account: int) -> None:
    """Sends `per_account` messages of about 256 KiB to every account, acknowledged, so that
    the partitions are big enough for a move to take a while."""
    for k in range(per_account * len(run.accounts)):
        s = run._next(0, run.accounts[k % len(run.accounts)], None)
        jepsen.smtp_send(c.ports["smtp"], s.account, s.mid, s.subject, padding=BULK)
        s.acked = True
        s.end = time.monotonic()


def wait_moving_to(c: ternlocal.Cluster, node: int, deadline: float = 60.0) -> tuple[int, int]:
    """Waits until a snapshot is on its way to `node` (some bytes sent, not all); returns the
    group and the node sending it (the group's leader)."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        with contextlib.suppress(ternlocal.ClusterError):
            status = c.cluster_status()
            last = status.get("rebalance")
            for g, view in ternlocal.group_leaders(status).items():
                sent = ((view or {}).get("sending") or {}).get(str(node), 0)
                if g != 0 and 0 < sent < view.get("bytes", 0):
                    return g, view["leader"]
        time.sleep(0.1)
    raise AssertionError(f"no move to node {node} seen within {deadline:.0f}s: {last}")


def kill_receiver(c: ternlocal.Cluster, run: jepsen.Run, receiver: int, source: int) -> None:
    c.kill(receiver)
    time.sleep(3)   # holding the fault is the point
    c.restart(receiver)


def kill_source(c: ternlocal.Cluster, run: jepsen.Run, receiver: int, source: int) -> None:
    c.kill(source)
    time.sleep(3)
    c.restart(source)


def partition_receiver(c: ternlocal.Cluster, run: jepsen.Run, receiver: int, source: int) -> None:
    c.partition(receiver)
    time.sleep(5)
    c.heal()


@needs_cluster
@pytest.mark.parametrize("fault", [kill_receiver, kill_source, partition_receiver],
                         ids=lambda f: f.__name__)
def test_a_fault_in_the_middle_of_a_move_loses_nothing(tmp_path, fault):
    with ternlocal.Cluster(tmp_path / "cluster", log=print, extra_config=SLOW_MOVES) as c:
        c.up(3, partitions=PARTITIONS, spare=1)
        accounts = jepsen.setup(c, 6)
        c.wait_converged(SETTLE)
        baseline = {a: {n: jepsen.read_inbox_on(c, n, a).uidvalidity for n in c.members}
                    for a in accounts}
        run = jepsen.Run(c, accounts, senders=2, seed=13, log=print, interval=0.05)
        preload(c, run, per_account=8)
        started = time.monotonic()
        senders = [threading.Thread(target=run._sender, args=(k,), daemon=True) for k in range(2)]
        for t in senders:
            t.start()
        try:
            receiver = c.join(wait=False)
            group, source = wait_moving_to(c, receiver)
            victim = source if fault is kill_source else receiver
            print(f"group {group} moving from node {source} to node {receiver}: "
                  f"{fault.__name__} (node {victim})")
            f = jepsen.Fault(fault.__name__, victim, time.monotonic())
            run.faults.append(f)
            fault(c, run, receiver, source)
            f.end = time.monotonic()
            c.wait_all_ready(SETTLE)
            f.recovered = time.monotonic()
            held = wait_spread(c)
        finally:
            run.stop.set()
            for t in senders:
                t.join(30)
        print(f"held after the move: {held}")
        c.wait_converged(SETTLE)
        report = jepsen.check(c, run, baseline, rounds=1, duration=time.monotonic() - started)
        print(report.table())
        assert report.failures() == []
