"""The outbound queue in a 3-node cluster behind HAProxy: a message the remote MX keeps
deferring (450) stays queued while the node that leads its partition -- the only node that
attempts deliveries -- is killed; the new leader takes the queue over and delivers it, exactly
once, as soon as the remote accepts."""

import re
import smtplib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))

import ternlocal  # noqa: E402
from mta import Unbound  # noqa: E402
from ternlib import message, wait_until  # noqa: E402

DOMAIN = "relay.test"
USER = f"rita@{DOMAIN}"
PASSWORD = "relay secret"
REMOTE = "far@remote.test"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


_UNAVAILABLE = ternlocal.unavailable()
pytestmark = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))


@pytest.fixture(scope="module")
def unbound(tmp_path_factory):
    server = Unbound(tmp_path_factory.mktemp("dns"), [
        "remote.test. IN MX 10 mx.remote.test.",
        "mx.remote.test. IN A 127.0.0.1",
    ])
    yield server
    server.stop()


@pytest.fixture
def cluster(tmp_path, unbound, postfix):
    relay = (f'[dns]\nservers = ["{unbound.addr}"]\ntimeout_secs = 2\n'
             f"[relay]\nport = {postfix.port}\nretry_initial_secs = 1\nretry_max_secs = 2\n")
    c = ternlocal.Cluster(tmp_path / "cluster", extra_config=relay)
    try:
        c.up(3, partitions=8)
        yield c
    finally:
        c.down()


def attempting_nodes(c, recipient: str) -> set[int]:
    """The nodes whose log shows a deferred delivery attempt to `recipient`."""
    found = set()
    for i in range(1, c.n + 1):
        text = ANSI.sub("", c.log_path(i).read_text(errors="replace"))
        if any("deferred" in line and recipient in line for line in text.splitlines()):
            found.add(i)
    return found


def queued_attempts(c, node: int, recipient: str) -> int | None:
    """Attempts recorded for `recipient` in node's replica of the queue; None if not queued."""
    for q in c.admin_get(node, "/v1/queue"):
        for r in q["recipients"]:
            if r["address"] == recipient:
                return r["attempts"]
    return None


def test_new_partition_leader_resumes_the_queue(cluster, postfix):
    c = cluster
    c.cli(1, "domain", "add", DOMAIN)
    c.cli(1, "account", "add", USER, "--password", PASSWORD)
    c.wait_converged(30)

    postfix.reject(REMOTE, "450 4.2.0 not yet")
    try:
        with smtplib.SMTP(*c.ports["submission"], timeout=30) as s:
            s.ehlo("client.test")
            s.login(USER, PASSWORD)
            assert s.sendmail(USER, [REMOTE], message("across a failover", sender=USER, to=REMOTE)) == {}

        [leader] = wait_until(lambda: attempting_nodes(c, REMOTE), timeout=30,
                              what="a node to attempt the delivery")
        survivors = [i for i in (1, 2, 3) if i != leader]
        # The deferral is replicated: every survivor's replica shows the attempt.
        for i in survivors:
            wait_until(lambda i=i: (queued_attempts(c, i, REMOTE) or 0) >= 1, timeout=30,
                       what=f"node {i}'s replica to record the attempt")

        c.kill(leader)
        before = {i: queued_attempts(c, i, REMOTE) for i in survivors}
        # A survivor becomes leader and goes on trying (the remote still answers 450).
        wait_until(lambda: any((queued_attempts(c, i, REMOTE) or 0) > before[i] for i in survivors),
                   timeout=60, what="the new leader to attempt the delivery again")
        new = attempting_nodes(c, REMOTE) - {leader}
        assert new, "no surviving node attempted the delivery"
    finally:
        postfix.accept(REMOTE)

    [msg] = postfix.wait_for(REMOTE, 1, timeout=60)
    assert b"across a failover" in msg
    for i in survivors:
        wait_until(lambda i=i: queued_attempts(c, i, REMOTE) is None, timeout=30,
                   what=f"node {i}'s queue to drain")
    postfix.wait_idle()
    # A remote that answered 450 never had the message: no SMTP window, so exactly once.
    assert len(postfix.messages(REMOTE)) == 1
    # The killed node comes back, catches up, and does not send it again.
    c.restart(leader)
    c.wait_all_ready()
    wait_until(lambda: queued_attempts(c, leader, REMOTE) is None, timeout=30,
               what=f"node {leader}'s queue to catch up")
    postfix.wait_idle()
    assert len(postfix.messages(REMOTE)) == 1
