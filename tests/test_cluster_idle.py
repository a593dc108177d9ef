"""A 3-node cluster (cluster/ternlocal.py): an IMAP IDLE session on one node keeps getting woken
when the leader of its account's partition is killed; `tern cluster status` names every node and
a leader for every group; /health/ready follows a partition (503) and its heal (200)."""

import contextlib
import re
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))

import jepsen  # noqa: E402
import ternlocal  # noqa: E402

PARTITIONS = 8
DOMAIN = "idle.test"
USER = f"ida@{DOMAIN}"
PASSWORD = jepsen.PASSWORD


_UNAVAILABLE = ternlocal.unavailable()
pytestmark = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))


@pytest.fixture
def cluster(tmp_path):
    c = ternlocal.Cluster(tmp_path / "cluster")
    try:
        c.up(3, partitions=PARTITIONS)
        yield c
    finally:
        c.down()


def wait_for(condition, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class RawImap:
    """A line-level IMAP client: imaplib has no IDLE. Every read has a deadline."""

    def __init__(self, addr, timeout=10.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.buf = b""
        self.seen: list[bytes] = []          # every line read, for failure messages
        greeting = self.readline(time.monotonic() + timeout)
        assert greeting.startswith(b"* OK"), greeting

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, line: str):
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete line before the deadline; read so far: "
                                   f"{self.seen[-10:]} + {self.buf!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionError(f"the server closed the connection; last lines: "
                                      f"{self.seen[-10:]} + {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        self.seen.append(line)
        return line

    def command(self, tag: str, text: str, timeout: float = 15.0) -> list[bytes]:
        """Sends `tag text`; returns the untagged lines; asserts the tagged OK."""
        self.send(f"{tag} {text}")
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            line = self.readline(deadline)
            if line.startswith(tag.encode() + b" "):
                assert line.split()[1] == b"OK", f"{tag} {text}: {line!r} after {lines}"
                return lines
            lines.append(line)

    def wait_exists(self, at_least: int, timeout: float) -> int:
        """Reads untagged responses until `* N EXISTS` with N >= at_least; returns N."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.readline(deadline)
            except TimeoutError as e:
                raise AssertionError(f"IDLE: no '* N EXISTS' with N >= {at_least} within "
                                     f"{timeout}s: {e}") from None
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m and int(m.group(1)) >= at_least:
                return int(m.group(1))
            assert not line.startswith(b"* BYE"), f"IDLE: the server said {line!r}"


def exists_and_uidvalidity(lines: list[bytes]) -> tuple[int, int]:
    exists = [int(m.group(1)) for line in lines if (m := re.match(rb"\* (\d+) EXISTS", line))]
    uv = [int(m.group(1)) for line in lines if (m := re.search(rb"\[UIDVALIDITY (\d+)\]", line))]
    assert exists and uv, f"SELECT INBOX: no EXISTS or UIDVALIDITY in {lines}"
    return exists[-1], uv[-1]


def send(c, node: int, mid: str, deadline: float = 10.0):
    jepsen.smtp_send(c.node_addr(node, "smtp"), USER, mid, f"idle test {mid}", timeout=deadline)


def send_until_acked(c, node: int, name: str, timeout: float) -> tuple[str, list[str]]:
    """Sends to node directly until DATA gets 250, each attempt a new Message-ID; returns the
    acknowledged Message-ID and every attempt's."""
    end = time.monotonic() + timeout
    attempts, errors = [], []
    while time.monotonic() < end:
        mid = f"<{name}.{len(attempts)}.{time.time_ns()}@idle.tern.test>"
        attempts.append(mid)
        try:
            send(c, node, mid)
            return mid, attempts
        except Exception as e:  # noqa: BLE001 - any failure: not acknowledged, try again
            errors.append(f"{type(e).__name__}: {e}")
            time.sleep(0.2)
    raise AssertionError(f"node {node} did not accept {name} within {timeout}s: {errors[-5:]}")


def account_partition(c, before: dict[int, tuple[int, str]]) -> int:
    """The data group whose state changed since `before` (node 1's digests), once every replica
    agrees: the partition that holds USER's mailbox."""
    c.wait_converged(30)
    after = c.digests(1)
    changed = [g for g in after if g != 0 and before.get(g, (0, ""))[1] != after[g][1]]
    assert len(changed) == 1, f"expected one data group to change, got {changed}"
    return changed[0]


def test_idle_is_woken_across_a_leader_failover(cluster):
    c = cluster
    c.cli(1, "domain", "add", DOMAIN)
    c.cli(1, "account", "add", USER, "--password", PASSWORD)
    c.wait_converged(30)

    # A first message tells which partition holds the account.
    before = c.digests(1)
    m0 = f"<first.{time.time_ns()}@idle.tern.test>"
    send(c, 1, m0)
    group = account_partition(c, before)
    leaders = ternlocal.group_leaders(c.cluster_status(1))
    assert leaders.get(group), f"group {group} has no leader: {leaders}"
    victim = int(leaders[group]["leader"])
    a, b = [i for i in (1, 2, 3) if i != victim]       # IDLE on a, SMTP to b, kill victim
    print(f"\naccount partition {group}, led by node {victim}; IDLE on node {a}, SMTP to node {b}")

    imap = RawImap(c.node_addr(a, "imap"))
    try:
        imap.command("a0", f'LOGIN "{USER}" "{PASSWORD}"')
        n0, uidvalidity = exists_and_uidvalidity(imap.command("a1", "SELECT INBOX"))
        assert n0 == 1
        imap.send("a2 IDLE")
        line = imap.readline(time.monotonic() + 10)
        assert line.startswith(b"+"), f"IDLE: expected a continuation, got {line!r}"

        m1, attempts1 = send_until_acked(c, b, "before-kill", 30)
        n1 = imap.wait_exists(n0 + 1, 20)

        c.kill(victim)
        killed_at = time.monotonic()
        m2, attempts = send_until_acked(c, b, "after-kill", 60)
        acked_after = time.monotonic() - killed_at
        n2 = imap.wait_exists(n1 + 1, 30)
        print(f"after the kill: accepted in {acked_after:.1f}s ({len(attempts)} attempt(s)); "
              f"IDLE saw {n2} EXISTS {time.monotonic() - killed_at:.1f}s after the kill")

        imap.send("DONE")
        deadline = time.monotonic() + 10
        while not (line := imap.readline(deadline)).startswith(b"a2 "):
            pass
        assert line.startswith(b"a2 OK"), f"IDLE ended with {line!r}"
        imap.command("a3", "LOGOUT")
    finally:
        imap.close()

    inbox = jepsen.read_inbox(*c.node_addr(a, "imap"), USER)
    assert inbox.uidvalidity == uidvalidity
    uids = [m.uid for m in inbox.messages]
    assert uids == sorted(set(uids)), f"UIDs not strictly increasing: {uids}"
    by_mid = {}
    for m in inbox.messages:
        assert m.mid not in by_mid, f"{m.mid} present twice: {inbox.messages}"
        by_mid[m.mid] = m.uid
    for mid in (m0, m1, m2):
        assert mid in by_mid, f"{mid} missing on node {a}: {inbox.messages}"
    assert by_mid[m0] < by_mid[m1] < by_mid[m2]
    unknown = set(by_mid) - {m0} - set(attempts1) - set(attempts)
    assert not unknown, f"unexpected messages: {unknown}"

    # The killed leader comes back and catches up to the same INBOX.
    c.restart(victim)
    c.wait_all_ready()
    c.wait_converged()
    back = jepsen.read_inbox_on(c, victim, USER)
    assert back.uidvalidity == uidvalidity
    assert [(m.uid, m.mid) for m in back.messages] == [(m.uid, m.mid) for m in inbox.messages]


def test_cluster_status_names_every_node_and_readiness_follows_a_partition(cluster):
    c = cluster
    text = c.cli(1, "cluster", "status")
    lines = text.splitlines()
    for i in (1, 2, 3):
        ip = re.escape(ternlocal.node_ip(i))
        row = [ln for ln in lines if re.match(rf"^{i}\s+{ip}:\d+\s", ln)]
        assert row and row[0].split()[2] == "yes", f"node {i} missing or unreachable:\n{text}"
    head = next((k for k, ln in enumerate(lines) if ln.split()[:2] == ["GROUP", "LEADER"]), None)
    assert head is not None, f"no group table:\n{text}"
    groups = {}
    for ln in lines[head + 1:]:
        cols = ln.split()
        if not cols or not cols[0].isdigit():
            break
        groups[int(cols[0])] = cols[1]
    assert sorted(groups) == list(range(PARTITIONS + 1)), f"groups:\n{text}"
    assert all(leader in ("1", "2", "3") for leader in groups.values()), f"leaderless:\n{text}"

    cut = 3
    ready = lambda i: ternlocal.http_status(c.admin_url(i) + "/health/ready")   # noqa: E731
    assert all(ready(i) == 200 for i in (1, 2, 3))
    c.partition(cut)
    wait_for(lambda: ready(cut) == 503, 30, f"node {cut}'s /health/ready to turn 503")
    # The two others keep (or regain) a leader for every group: they stay ready.
    wait_for(lambda: ready(1) == 200 and ready(2) == 200, 30, "nodes 1 and 2 ready")
    c.heal()
    wait_for(lambda: ready(cut) == 200, 30, f"node {cut}'s /health/ready to be 200 after heal")
    c.wait_all_ready()
