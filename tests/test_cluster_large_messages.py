"""A message at the size limit on three nodes: it commits, every replica serves it back byte for
byte over IMAP, and a small message to the same partition commits right after it."""

import base64
import contextlib
import hashlib
import os
import smtplib
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))

import jepsen  # noqa: E402
import ternlocal  # noqa: E402

# Room under the 50 MiB limit for the headers Tern prepends (Received, Return-Path, ...).
BIG_BYTES = 50 * 1024 * 1024 - 64 * 1024

_UNAVAILABLE = ternlocal.unavailable()
pytestmark = pytest.mark.skipif(_UNAVAILABLE is not None, reason=str(_UNAVAILABLE))


@pytest.fixture
def cluster(tmp_path):
    c = ternlocal.Cluster(tmp_path / "cluster")
    try:
        c.up(3, partitions=1)
        yield c
    finally:
        c.down()


def big_message(to: str, mid: str) -> bytes:
    head = (f"From: {jepsen.SENDER}\r\nTo: {to}\r\nSubject: big\r\nMessage-ID: {mid}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode()
    lines = (BIG_BYTES - len(head)) // 78
    return head + base64.encodebytes(os.urandom(lines * 57)).replace(b"\n", b"\r\n")


def send(addr, to: str, message: bytes) -> None:
    smtp = smtplib.SMTP(*addr, timeout=120)
    try:
        smtp.sendmail(jepsen.SENDER, [to], message)
    finally:
        with contextlib.suppress(Exception):
            smtp.quit()


def fetch_bodies(c, node: int, user: str) -> dict[str, bytes]:
    """Message-ID → the message as stored (Tern's added header lines included)."""
    m = jepsen.imap_login(*c.node_addr(node, "imap"), user, timeout=120)
    try:
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK", data
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        out = {}
        for item in data:
            if isinstance(item, tuple):
                raw = item[1]
                header = raw.split(b"\r\n\r\n", 1)[0]
                mid = next(line.split(b":", 1)[1].strip().decode()
                           for line in header.split(b"\r\n")
                           if line.lower().startswith(b"message-id:"))
                out[mid] = raw
        return out
    finally:
        with contextlib.suppress(Exception):
            m.logout()


def test_a_message_at_the_size_limit_commits_and_the_next_one_follows(cluster):
    c = cluster
    [account] = jepsen.setup(c, 1)
    c.wait_converged()
    big = big_message(account, "<big@large.test>")
    assert len(big) > 49 * 1024 * 1024
    send(c.ports["smtp"], account, big)
    after = time.monotonic()
    jepsen.smtp_send(c.ports["smtp"], account, "<small@large.test>", "right after")
    print(f"small message acknowledged {time.monotonic() - after:.2f}s after the big one")
    c.wait_converged(deadline=120)
    want = hashlib.sha256(big).hexdigest()
    for node in (1, 2, 3):
        bodies = fetch_bodies(c, node, account)
        assert sorted(bodies) == ["<big@large.test>", "<small@large.test>"], node
        stored = bodies["<big@large.test>"]
        # What was sent is the tail of what is stored (after the trace headers Tern adds).
        assert hashlib.sha256(stored[len(stored) - len(big):]).hexdigest() == want, node
