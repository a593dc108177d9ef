"""Dovecot's ImapTest against Tern: the scripted compliance suite (exact counts) and the stress
run with state tracking (no errors), on one node and through HAProxy on a three-node cluster
with the clients spread over the nodes.

ImapTest is built by `make test-deps` from ../shared/tools/imaptest (IMAPTEST_DIR, default
/var/tmp/imaptest: the binary, its `tests/` and `test.mbox`). Dovecot 2.3 scores 0 failures.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ternlib import Tern

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))

import ternlocal  # noqa: E402

IMAPTEST_DIR = Path(__import__("os").environ.get("IMAPTEST_DIR", "/var/tmp/imaptest"))
DOMAIN = "imaptest.test"
PASSWORD = "imaptest secret"
USERS = 10
# What the scripted suite runs against Tern's capabilities: every group, and every command of
# the base protocol and of the extensions Tern advertises. A change here means a capability
# was added or dropped: update the counts with the README's capability list.
GROUPS = 71
BASE_COMMANDS = 457
EXTENSION_COMMANDS = 218


def imaptest(*args: str, timeout: float) -> str:
    binary = IMAPTEST_DIR / "imaptest"
    assert binary.exists(), f"{binary} missing: run `make test-deps` (builds ImapTest)"
    done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=IMAPTEST_DIR)
    return done.stdout + done.stderr


def add_users(cli) -> None:
    cli("domain", "add", DOMAIN)
    for i in range(1, USERS + 1):
        cli("account", "add", f"user{i}@{DOMAIN}", "--password", PASSWORD)


def scripted(host: str, port: int) -> str:
    return imaptest(f"host={host}", f"port={port}", f"user=user1@{DOMAIN}", f"pass={PASSWORD}",
                    f"test={IMAPTEST_DIR / 'tests'}", timeout=600)


def stress(host: str, port: int, secs: int = 30) -> str:
    return imaptest(f"host={host}", f"port={port}", f"user=user%d@{DOMAIN}", f"pass={PASSWORD}",
                    f"users={USERS}", "clients=10", f"secs={secs}",
                    f"mbox={IMAPTEST_DIR / 'test.mbox'}", timeout=secs + 120)


def assert_scripted_clean(out: str) -> None:
    failures = re.findall(r"^\*\*\* Test .*$", out, re.M)
    summary = re.search(r"^(\d+) test groups: (\d+) failed, (\d+) skipped", out, re.M)
    base = re.search(r"^base protocol: (\d+)/(\d+) individual commands failed", out, re.M)
    ext = re.search(r"^extensions: (\d+)/(\d+) individual commands failed", out, re.M)
    assert summary and base and ext, f"no ImapTest summary:\n{out[-3000:]}"
    detail = "\n".join(failures[:40]) + "\n" + out[-4000:]
    assert (int(summary[2]), int(base[1]), int(ext[1])) == (0, 0, 0), detail
    assert int(summary[1]) == GROUPS and int(summary[3]) == 0, summary[0]
    assert int(base[2]) == BASE_COMMANDS, base[0]
    assert int(ext[2]) == EXTENSION_COMMANDS, ext[0]


def assert_stress_clean(out: str) -> None:
    errors = re.findall(r"^(?:Error|Panic|Fatal):.*$", out, re.M)
    assert not errors, "\n".join(errors[:30])
    # The run did work: the totals line counts logins, selects, fetches, stores, appends.
    totals = out.split("Totals:")[-1].strip().splitlines()
    assert len(totals) >= 3 and sum(int(n) for n in totals[-1].split()) > 1000, out[-2000:]


@pytest.fixture
def node(tmp_path):
    server = Tern(tmp_path / "node").start()
    add_users(lambda *a: server.cli(*a))
    yield server
    server.kill()


def test_scripted_suite_on_one_node(node):
    assert_scripted_clean(scripted("127.0.0.1", node.ports["imap"]))


def test_stress_with_state_tracking_on_one_node(node):
    assert_stress_clean(stress("127.0.0.1", node.ports["imap"]))


def sessions_served(c: ternlocal.Cluster) -> dict[str, int]:
    """Server name → connections HAProxy has sent it so far (its `stot`)."""
    rows = ternlocal._haproxy_servers(c._haproxy_socket, 2.0)
    return {r["svname"]: int(r.get("stot") or 0) for r in rows}


_UNAVAILABLE = ternlocal.unavailable()


@pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))
def test_scripted_and_stress_through_haproxy_on_three_nodes(tmp_path):
    c = ternlocal.Cluster(tmp_path / "cluster")
    try:
        c.up(3, partitions=8)
        add_users(lambda *a: c.cli(1, *a))
        host, port = c.ports["imap"]
        assert_scripted_clean(scripted(host, port))
        before = sessions_served(c)
        assert_stress_clean(stress(host, port, secs=20))
        after = sessions_served(c)
        # HAProxy spread the stress clients: every node served some of them.
        assert len(after) == 3 and all(after[n] > before.get(n, 0) for n in after), (before, after)
    finally:
        c.down()
