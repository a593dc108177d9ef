"""What must hold on every node of a 3-node cluster at once, as real clients see it:

- one POP3 session per maildrop, whichever nodes the sessions land on (RFC 1939 §8), and a
  lock held by a node that died ends when its lease runs out;
- after `tern account passwd` or `tern account del` returned, no node accepts the old
  credentials, not even one that was cut off while the change committed (it answers "try
  later" until it has caught up, then refuses them).
"""

import imaplib
import poplib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))

import ternlocal  # noqa: E402
from ternlib import wait_until  # noqa: E402

DOMAIN = "exclusive.test"
PASSWORD = "first secret"

_UNAVAILABLE = ternlocal.unavailable()
pytestmark = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))


@pytest.fixture
def cluster(tmp_path):
    c = ternlocal.Cluster(tmp_path / "cluster")
    try:
        c.up(3, partitions=8)
        c.cli(1, "domain", "add", DOMAIN)
        yield c
    finally:
        c.down()


def add_account(c, user: str, password: str = PASSWORD) -> None:
    c.cli(1, "account", "add", user, "--password", password)
    c.wait_converged(30)


def pop3(c, node: int, user: str, password: str = PASSWORD) -> poplib.POP3:
    """A POP3 session logged in on `node` (raises poplib.error_proto on -ERR)."""
    p = poplib.POP3(*c.node_addr(node, "pop3"), timeout=30)
    try:
        p.user(user)
        p.pass_(password)
    except BaseException:
        p.close()
        raise
    return p


def pop3_refusal(c, node: int, user: str, password: str = PASSWORD) -> str | None:
    """The -ERR a login on `node` gets, or None if it was accepted (the session is closed)."""
    try:
        p = pop3(c, node, user, password)
    except poplib.error_proto as e:
        return e.args[0].decode()
    p.quit()
    return None


def imap_login(c, node: int, user: str, password: str) -> str:
    """'OK', or the tagged NO's text, for a LOGIN on `node`."""
    m = imaplib.IMAP4(*c.node_addr(node, "imap"), timeout=30)
    try:
        m.login(user, password)
        return "OK"
    except imaplib.IMAP4.error as e:
        return str(e)
    finally:
        try:
            m.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def test_one_pop3_session_per_maildrop_across_nodes(cluster):
    c = cluster
    user = f"paula@{DOMAIN}"
    add_account(c, user)

    first = pop3(c, 1, user)
    for node in (2, 3, 1):
        refusal = pop3_refusal(c, node, user)
        assert refusal is not None and "[IN-USE]" in refusal, (node, refusal)
    # QUIT releases the lock before its +OK: the next session, on any node, gets it at once.
    first.quit()
    assert pop3_refusal(c, 2, user) is None

    # Another account is not affected by a held maildrop.
    other = f"olga@{DOMAIN}"
    add_account(c, other)
    held = pop3(c, 3, user)
    assert pop3_refusal(c, 2, other) is None
    held.quit()


def test_a_dead_nodes_pop3_lock_ends_with_its_lease(cluster):
    c = cluster
    user = f"dora@{DOMAIN}"
    add_account(c, user)

    held = pop3(c, 3, user)
    assert "[IN-USE]" in (pop3_refusal(c, 1, user) or "")
    c.kill(3)                       # the session's node dies without releasing anything
    held.sock.close()
    # Nodes 1 and 2 still make a quorum; the lease runs for 60 s from its last renewal, then
    # another node may take the maildrop.
    wait_until(lambda: pop3_refusal(c, 1, user) is None, timeout=150, interval=1.0,
               what="the dead session's maildrop lease to run out")


def test_old_credentials_fail_everywhere_once_the_change_returned(cluster):
    c = cluster
    user, gone = f"carl@{DOMAIN}", f"gina@{DOMAIN}"
    add_account(c, user)
    add_account(c, gone)
    assert imap_login(c, 3, user, PASSWORD) == "OK"
    assert imap_login(c, 3, gone, PASSWORD) == "OK"

    # Node 3 is cut off from the others while the changes commit on nodes 1 and 2.
    c.partition(3)
    try:
        c.cli(1, "account", "passwd", user, "--password", "second secret")
        c.cli(1, "account", "del", gone)
        # Node 3's replica still has the old password and the deleted account; it must not
        # use them: it cannot confirm it is current, so it says "try later".
        for who in (user, gone):
            answer = imap_login(c, 3, who, PASSWORD)
            assert answer != "OK" and "UNAVAILABLE" in answer, (who, answer)
        refusal = pop3_refusal(c, 3, user)
        assert refusal is not None and "[SYS/TEMP]" in refusal, refusal
    finally:
        c.heal()
    # Caught up, it refuses the old credentials and accepts the new password.
    wait_until(lambda: imap_login(c, 3, user, "second secret") == "OK", timeout=60,
               interval=0.5, what="node 3 to accept the new password after the heal")
    for node in (1, 2, 3):
        assert imap_login(c, node, user, PASSWORD) != "OK", node
        assert imap_login(c, node, gone, PASSWORD) != "OK", node
