"""Node identity on the node link and after data loss (issue 14, parts 2 and 3).

- A certificate of node 5, signed by the cluster CA, that says hello as node 1 is refused; the
  same certificate as itself (a node not in the cluster) may ask `Info`, and nothing else.
- A removed node's certificate is refused, and so is the removed node itself when it comes back.
- The issue's scenario: mail is committed on {1, 2} while 3 is cut off; node 2's data dir is
  wiped and the node restarted; node 1 is killed and 3 healed. Node 2 is refused (its `cluster
  join` too) and no group elects a leader without node 1's data; once 1 is back, node 2 is still
  refused until `cluster remove 2 --dead`, after which its id stays refused for ever and the
  machine joins as node 4. Every acknowledged message is in its INBOX once, on every node.

The link is spoken here the way a node speaks it: TLS 1.3 with a node certificate, then
length-prefixed bincode frames (`Hello`, the server's `Welcome`, tagged requests).
"""

import shutil
import socket
import ssl
import struct
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))

import jepsen  # noqa: E402
import ternlocal  # noqa: E402

_UNAVAILABLE = ternlocal.unavailable()
needs_cluster = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))

PARTITIONS = 4
SETTLE = 120.0


# --- the node link, spoken from Python -----------------------------------------------------------

def varint(n: int) -> bytes:
    """bincode 2's standard integer encoding."""
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfb" + struct.pack("<H", n)
    if n < 1 << 32:
        return b"\xfc" + struct.pack("<I", n)
    return b"\xfd" + struct.pack("<Q", n)


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    first = data[at]
    if first < 251:
        return first, at + 1
    size, fmt = {0xFB: (2, "<H"), 0xFC: (4, "<I"), 0xFD: (8, "<Q")}[first]
    return struct.unpack_from(fmt, data, at + 1)[0], at + 1 + size


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def read_frame(sock: ssl.SSLSocket) -> bytes | None:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (length,) = struct.unpack(">I", head)
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def read_string(data: bytes, at: int) -> str:
    length, at = read_varint(data, at)
    return data[at:at + length].decode()


class Link:
    """One node-link connection made with node `cert_node`'s certificate."""

    def __init__(self, c: ternlocal.Cluster, cert_node: int, target: int):
        certs = c.dir / "certs"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(certs / "ca.pem")
        ctx.load_cert_chain(certs / f"node-{cert_node}.pem", certs / f"node-{cert_node}.key")
        host, port = c.node_addr(target, "link")
        raw = socket.create_connection((host, port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)

    def hello(self, node: int, incarnation: int) -> tuple[str, int | str]:
        """Says hello as `node`; returns ("accepted", the server's node id) or ("refused",
        why)."""
        self.sock.sendall(frame(varint(node) + varint(incarnation) + b"\x00"))
        welcome = read_frame(self.sock)
        assert welcome is not None, "the server closed the link without a welcome"
        variant, at = read_varint(welcome, 0)
        if variant == 0:
            return "accepted", read_varint(welcome, at)[0]
        assert variant == 1, welcome
        return "refused", read_string(welcome, at)

    def call(self, request: bytes, call_id: int = 1) -> tuple[int, bytes]:
        """Sends a tagged request (its encoded body); returns the answer's variant and bytes."""
        self.sock.sendall(frame(varint(call_id) + request))
        answer = read_frame(self.sock)
        assert answer is not None, "the server closed the link instead of answering"
        got_id, at = read_varint(answer, 0)
        assert got_id == call_id, (got_id, call_id)
        variant, at = read_varint(answer, at)
        return variant, answer[at:]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# Variant indexes of `Request` and `Answer` (crates/raft/src/link/rpc.rs).
REQUEST_INFO = varint(5)
REQUEST_STATUS = varint(8)
ANSWER_INFO = 5
ANSWER_ERROR = 9


def hello_as(c: ternlocal.Cluster, cert_node: int, target: int, node: int,
             incarnation: int = 12345) -> tuple[str, int | str]:
    link = Link(c, cert_node, target)
    try:
        return link.hello(node, incarnation)
    finally:
        link.close()


def wait_for(what: str, check, deadline: float):
    """Polls `check` until it returns something true (returned) or the deadline passes."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        try:
            last = check()
        except (ternlocal.ClusterError, OSError, AssertionError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {deadline:.0f}s (last: {last!r})")


# --- tests ---------------------------------------------------------------------------------------

@needs_cluster
def test_a_certificate_claiming_another_node_and_a_removed_node_are_refused(tmp_path):
    with ternlocal.Cluster(tmp_path / "cluster", log=print) as c:
        c.up(3, partitions=PARTITIONS, spare=2)      # certificates for nodes 4 and 5 too

        # Node 5's certificate saying it is node 1: refused before any request.
        verdict, why = hello_as(c, cert_node=5, target=1, node=1)
        assert verdict == "refused" and "node 5's" in why and "node 1" in why, why
        # Node 1's own certificate with node 1's id but another data dir: refused.
        verdict, why = hello_as(c, cert_node=1, target=2, node=1)
        assert verdict == "refused" and "lost its data" in why, why

        # As itself, node 5 (no member) is welcomed, may ask Info, and nothing else.
        link = Link(c, 5, 1)
        try:
            assert link.hello(5, 777) == ("accepted", 1)
            variant, _ = link.call(REQUEST_INFO, 1)
            assert variant == ANSWER_INFO
            variant, body = link.call(REQUEST_STATUS, 2)
            assert variant == ANSWER_ERROR and "not a member" in read_string(body, 0), body
        finally:
            link.close()

        # A removed node: node 3 is killed and removed; its certificate is refused by every
        # member, whatever incarnation it says, and the node itself when it comes back.
        c.kill(3)
        c.cli(1, "cluster", "remove", "3", "--dead")
        c.info["members"] = [1, 2]
        c.info["drained"] = [3]
        for member in (1, 2):
            verdict, why = wait_for(
                f"node {member} refuses node 3",
                lambda m=member: (lambda v: v if v[0] == "refused" else None)(
                    hello_as(c, cert_node=3, target=m, node=3)),
                SETTLE)
            assert "was removed" in why, why
        c.restart(3)
        wait_for("node 3's log shows it refused",
                 lambda: "was removed from the cluster" in c.log_path(3).read_text(), SETTLE)
        status = c.cluster_status(1)
        assert sorted(m["id"] for m in status["members"]) == [1, 2], status["members"]
        with pytest.raises(ternlocal.ClusterError, match="removed"):
            c.cli(3, "cluster", "join", "--seed", "%s:%d" % c.node_addr(1, "advertise"))


def own_leaders(c: ternlocal.Cluster, node: int) -> dict[int, int | None]:
    """Group → the leader `node` itself knows of (from its own status view)."""
    status = c.cluster_status(node)
    for member in status["members"]:
        if member["id"] == node:
            return {k: g.get("leader") for k, g in enumerate(member["groups"])}
    raise AssertionError(f"node {node} is not in its own status: {status['members']}")


@needs_cluster
def test_a_wiped_node_is_refused_until_removed_and_nothing_acknowledged_is_lost(tmp_path):
    with ternlocal.Cluster(tmp_path / "cluster", log=print) as c:
        c.up(3, partitions=PARTITIONS, spare=1)
        accounts = jepsen.setup(c, 2)
        for n in (1, 2, 3):      # every node has applied the accounts before 3 is cut off
            for account in accounts:
                jepsen.read_inbox_on(c, n, account)
        run = jepsen.Run(c, accounts, senders=1, seed=14, log=print)

        # Mail committed on {1, 2} while 3 is cut off.
        c.partition(3)
        for k in range(12):
            s = run._next(0, accounts[k % len(accounts)], None)
            jepsen.smtp_send(c.node_addr(1, "smtp"), s.account, s.mid, s.subject)
            s.acked = True
            s.end = time.monotonic()

        # Node 2 loses its data dir and comes back under the same id.
        c.kill(2)
        shutil.rmtree(c.data_dir(2))
        c.data_dir(2).mkdir()
        c.restart(2)
        seed = "%s:%d" % c.node_addr(1, "advertise")
        with pytest.raises(ternlocal.ClusterError, match="lost its data"):
            c.cli(2, "cluster", "join", "--seed", seed)

        # Node 1 dies, node 3 (behind) comes back: with node 2 refused there is no quorum, so no
        # group may elect a leader that lacks node 1's entries.
        c.kill(1)
        c.heal()
        wait_for("node 3 answers status", lambda: own_leaders(c, 3), SETTLE)
        # Node 3 campaigns and does not take node 2's vote: its link refuses the wiped node.
        wait_for("node 3 refuses node 2's vote",
                 lambda: "node 2's data dir is not the one the cluster knows"
                 in c.log_path(3).read_text(), SETTLE)
        end = time.monotonic() + 10.0   # many election timeouts (0.9-1.2 s each)
        while time.monotonic() < end:
            leaders = own_leaders(c, 3)
            assert not any(l in (2, 3) for l in leaders.values()), leaders
            time.sleep(0.5)

        # Node 1 is back: the cluster runs again on {1, 3}; node 2 stays refused.
        c.restart(1)
        c.wait_ready(1)
        c.wait_ready(3)
        with pytest.raises(ternlocal.ClusterError, match="lost its data"):
            c.cli(2, "cluster", "join", "--seed", seed)

        # Removed, the id is refused for ever; the machine joins under a new id (4).
        c.cli(1, "cluster", "remove", "2", "--dead")

        def join_refused_as_removed():
            try:
                c.cli(2, "cluster", "join", "--seed", seed)
            except ternlocal.ClusterError as e:
                assert "lost its data" in str(e) or "was removed" in str(e), e
                return "was removed" in str(e)
            raise AssertionError("a removed node joined again")
        # Refused throughout; as removed once node 1 has applied the membership change.
        wait_for("node 2 refused as removed", join_refused_as_removed, SETTLE)
        c.kill(2)
        c.info["members"] = [1, 3]
        c.info["drained"] = [2]
        assert c.join(SETTLE) == 4
        c.wait_converged(SETTLE, nodes=[1, 3, 4])

        acked = [s for s in run.sends if s.acked]
        assert len(acked) == 12
        for n in (1, 3, 4):
            for account in accounts:
                inbox = jepsen.read_inbox_on(c, n, account)
                mids = [m.mid for m in inbox.messages]
                want = sorted(s.mid for s in acked if s.account == account)
                assert sorted(mids) == want, (n, account, mids, want)
