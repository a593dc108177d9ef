"""IMAP memory is bounded by design: a literal before login is small, a FETCH is sent as it is
built (a client that stops reading is cut off after the idle limit, and its connection comes
back), an item or message named twice is answered once."""

import imaplib
import re
import socket
import urllib.request

import pytest

from ternlib import PASSWORD, Tern, wait_until

IDLE = 3                 # seconds: the authenticated idle limit under test
WAIT = 30                # the most a test waits for the server to act
USER = "bob@test.example"


@pytest.fixture(scope="module")
def tern(tmp_path_factory):
    server = Tern(tmp_path_factory.mktemp("imap-memory") / "node", limits={
        "imap_idle_timeout_secs": IDLE,
    }).start()
    server.cli("domain", "add", "test.example")
    server.add_account(USER)
    yield server
    server.kill()


def raw(t) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", t.ports["imap"]), timeout=WAIT)
    assert s.recv(4096).startswith(b"* OK")
    return s


def read_until(s: socket.socket, marker: bytes) -> bytes:
    got = b""
    while marker not in got:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def open_connections(t) -> int:
    with urllib.request.urlopen(t.admin_url + "/metrics", timeout=10) as r:
        metrics = r.read().decode()
    return int(re.search(r"^tern_connections_open (\d+)", metrics, re.M).group(1))


def message(n: int, size: int) -> bytes:
    head = f"From: a@remote.example\r\nTo: {USER}\r\nSubject: m{n}\r\n\r\n".encode()
    line = (f"message {n} ".encode() * 8)[:76] + b"\r\n"
    return head + line * (size // len(line))


def fill(t, mailbox: str, sizes: list[int]) -> list[bytes]:
    imap = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    imap.login(USER, PASSWORD)
    imap.create(mailbox)
    bodies = [message(i, size) for i, size in enumerate(sizes)]
    for body in bodies:
        assert imap.append(mailbox, None, None, body)[0] == "OK"
    imap.logout()
    return bodies


def test_a_literal_before_login_is_small(tern):
    s = raw(tern)
    s.sendall(b"a1 LOGIN {9000}\r\n")
    assert read_until(s, b"\r\n").startswith(b"a1 NO [TOOBIG]")
    # A synchronising literal that was refused leaves the session usable.
    s.sendall(b"a2 LOGIN {16}\r\n")
    assert read_until(s, b"\r\n").startswith(b"+")
    s.sendall(USER.encode() + b' "' + PASSWORD.encode() + b'"\r\n')
    assert b"a2 OK" in read_until(s, b"a2 ")
    s.close()

    # A non-synchronising one is already on its way: the server hangs up without reading it.
    s = raw(tern)
    s.sendall(b"a1 LOGIN {9000+}\r\n")
    assert read_until(s, b"\r\n").startswith(b"* BYE [TOOBIG]")
    s.close()


def test_after_login_a_large_literal_is_accepted(tern):
    imap = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    imap.login(USER, PASSWORD)
    body = message(0, 200_000)
    assert imap.append("INBOX", None, None, body)[0] == "OK"
    imap.logout()


def test_a_long_fetch_streams_every_body_once_per_item(tern):
    # 12 x 40 KB: more than one output flush.
    bodies = fill(tern, "Stream", [40_000] * 12)
    imap = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    imap.login(USER, PASSWORD)
    imap.select("Stream", readonly=True)
    typ, data = imap.fetch("1:*", "(BODY.PEEK[] UID BODY.PEEK[] UID FLAGS)")
    assert typ == "OK"
    fetched = [part for part in data if isinstance(part, tuple)]
    assert [body for _, body in fetched] == bodies
    # Everything but the literals: one BODY[] and one UID per message.
    text = b" ".join(part[0] if isinstance(part, tuple) else part for part in data)
    assert text.count(b"BODY[]") == 12 and text.count(b"UID ") == 12, text
    imap.logout()


def test_a_sequence_set_naming_messages_many_times_answers_each_once(tern):
    fill(tern, "Few", [100] * 3)
    imap = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    imap.login(USER, PASSWORD)
    imap.select("Few", readonly=True)
    # ~6 KB of numbers, most of them beyond the mailbox.
    huge = ",".join(["2", "1:2", "2:1", "*"] + [str(n) for n in range(1, 1200)])
    typ, data = imap.fetch(huge, "(UID)")
    assert typ == "OK"
    seqs = [int(line.split()[0]) for line in data]
    assert seqs == [1, 2, 3], data
    imap.logout()


def test_a_client_that_stops_reading_a_fetch_is_cut_off(tern):
    fill(tern, "Big", [5_000_000] * 4)       # 20 MB: far more than the socket buffers hold
    wait_until(lambda: open_connections(tern) == 0, timeout=WAIT, what="no connection open")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(WAIT)
    s.connect(("127.0.0.1", tern.ports["imap"]))
    s.recv(4096)
    s.sendall(b'a1 LOGIN ' + USER.encode() + b' "' + PASSWORD.encode() + b'"\r\n')
    assert b"a1 OK" in read_until(s, b"a1 ")
    s.sendall(b"a2 SELECT Big\r\n")
    assert b"a2 OK" in read_until(s, b"a2 ")
    s.sendall(b"a3 FETCH 1:* BODY.PEEK[]\r\n")
    # Never read again: the server's writes stop making progress, and after the idle limit
    # it gives up on this client and frees the connection.
    wait_until(lambda: open_connections(tern) == 0, timeout=WAIT,
               what="the stalled reader's connection to be closed")
    # Other clients were served all along.
    imap = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    imap.login(USER, PASSWORD)
    assert imap.select("Big", readonly=True)[0] == "OK"
    imap.logout()
    s.close()
