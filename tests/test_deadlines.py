"""Every read has a deadline: a client that stops sending — mid-DATA, mid-AUTH, mid-literal,
before its TLS handshake, or before it logs in — is answered (421 / BYE) and disconnected, and
its connection permit comes back. The deadlines are short here, from the config; a client that
trickles bytes within the deadline is served."""

import socket
import time

import pytest

from ternlib import PASSWORD, Tern

DEADLINE = 2           # seconds, for every deadline under test
WAIT = 30              # the most a test waits for the server to act


@pytest.fixture(scope="module")
def tern(tmp_path_factory):
    server = Tern(tmp_path_factory.mktemp("deadlines") / "node", limits={
        "smtp_idle_timeout_secs": DEADLINE,
        "smtp_data_timeout_secs": DEADLINE,
        "imap_login_timeout_secs": DEADLINE,
        "tls_handshake_timeout_secs": DEADLINE,
        "pop3_idle_timeout_secs": DEADLINE,
    }).start()
    server.cli("domain", "add", "test.example")
    server.add_account("bob@test.example")
    yield server
    server.kill()


class Client:
    def __init__(self, port: int, wait: float = WAIT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=wait)
        self.f = self.sock.makefile("rb")

    def send(self, data: bytes):
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.f.readline()

    def until(self, prefix: bytes) -> bytes:
        while (got := self.f.readline()) and not got.startswith(prefix):
            pass
        return got

    def rest(self) -> list[bytes]:
        """Every line until the server closes (raises socket.timeout after WAIT)."""
        lines = []
        while line := self.f.readline():
            lines.append(line)
        return lines

    def close(self):
        self.f.close()
        self.sock.close()


def smtp_in_data(t) -> Client:
    c = Client(t.ports["smtp"])
    c.until(b"220 ")
    c.send(b"EHLO c\r\n")
    c.until(b"250 ")
    c.send(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n")
    assert [c.line()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
    return c


def test_smtp_client_silent_in_data_is_cut_off(tern):
    c = smtp_in_data(tern)
    c.send(b"Subject: half\r\n\r\nand then nothing")
    lines = c.rest()
    c.close()
    assert lines and lines[-1].startswith(b"421 4.4.2"), lines


def test_smtp_client_trickling_data_within_the_deadline_is_served(tern):
    c = smtp_in_data(tern)
    c.send(b"Subject: slow\r\n\r\n")
    started = time.monotonic()
    while time.monotonic() - started < 2.5 * DEADLINE:   # longer than one deadline in all
        c.send(b"x")
        time.sleep(DEADLINE / 4)
    c.send(b"\r\n.\r\n")
    assert c.line().startswith(b"250"), "a client that keeps sending is not cut off"
    c.send(b"QUIT\r\n")
    c.close()


def test_smtp_client_silent_in_an_auth_exchange_is_cut_off(tern):
    c = Client(tern.ports["submission"])
    c.until(b"220 ")
    c.send(b"EHLO c\r\nAUTH PLAIN\r\n")
    c.until(b"250 ")
    assert c.line().startswith(b"334")
    lines = c.rest()
    c.close()
    assert lines and lines[-1].startswith(b"421"), lines


@pytest.mark.parametrize("protocol, greeting, command, go_ahead", [
    ("smtp", b"220 ", b"EHLO c\r\nSTARTTLS\r\n", b"220 "),
    ("imap", b"* OK", b"a1 STARTTLS\r\n", b"a1 OK"),
    ("pop3", b"+OK", b"STLS\r\n", b"+OK"),
])
def test_a_stalled_starttls_handshake_is_cut_off(tern, protocol, greeting, command, go_ahead):
    c = Client(tern.ports[protocol])
    c.until(greeting)
    c.send(command)
    if protocol == "smtp":
        c.until(b"250 ")
    assert c.until(go_ahead).startswith(go_ahead)
    assert c.rest() == []            # no handshake from us: the server hangs up
    c.close()


@pytest.mark.parametrize("protocol", ["imaps", "pop3s", "submissions"])
def test_a_stalled_implicit_tls_handshake_is_cut_off(tern, protocol):
    # Waits less than the built-in 15 s this replaced, so only the configured deadline passes.
    c = Client(tern.ports[protocol], wait=10)
    assert c.rest() == []
    c.close()


def test_imap_client_silent_before_login_is_cut_off_but_not_after(tern):
    c = Client(tern.ports["imap"])
    assert c.line().startswith(b"* OK")
    lines = c.rest()
    c.close()
    assert lines and lines[-1].startswith(b"* BYE"), lines

    c = Client(tern.ports["imap"])
    c.line()
    c.send(b'a1 LOGIN bob@test.example "' + PASSWORD.encode() + b'"\r\n')
    assert c.until(b"a1 ").startswith(b"a1 OK")
    time.sleep(2 * DEADLINE)         # longer than the pre-login deadline: still served
    c.send(b"a2 NOOP\r\n")
    assert c.until(b"a2 ").startswith(b"a2 OK")
    c.send(b"a3 LOGOUT\r\n")
    c.close()


def test_imap_client_silent_inside_a_literal_is_cut_off(tern):
    c = Client(tern.ports["imap"])
    c.line()
    c.send(b"a1 LOGIN {16}\r\n")
    assert c.line().startswith(b"+")
    c.send(b"bob@")
    lines = c.rest()
    c.close()
    assert lines and lines[-1].startswith(b"* BYE"), lines


def test_pop3_client_talking_slowly_within_the_deadline_is_served(tern):
    c = Client(tern.ports["pop3"])
    assert c.line().startswith(b"+OK")
    c.send(b"USER bob@test.example\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert c.line().startswith(b"+OK") and c.line().startswith(b"+OK")
    started = time.monotonic()
    while time.monotonic() - started < 2.5 * DEADLINE:   # longer than one deadline in all
        c.send(b"NO")
        time.sleep(DEADLINE / 4)
        c.send(b"OP\r\n")
        assert c.line().startswith(b"+OK")
        time.sleep(DEADLINE / 4)
    lines = c.rest()                 # then silence: cut off without a word (RFC 1939 §3)
    c.close()
    assert lines == [], lines


def test_imap_client_trickling_an_append_after_login_is_served(tern):
    c = Client(tern.ports["imap"])
    c.line()
    c.send(b'a1 LOGIN bob@test.example "' + PASSWORD.encode() + b'"\r\n')
    assert c.until(b"a1 ").startswith(b"a1 OK")
    body = b"Subject: slow append\r\n\r\n" + b"x" * 40 + b"\r\n"
    c.send(b"a2 APPEND INBOX {%d}\r\n" % len(body))
    assert c.line().startswith(b"+")
    # Longer than the pre-login deadline in all, a few bytes at a time.
    for i in range(0, len(body), 6):
        c.send(body[i:i + 6])
        time.sleep(DEADLINE / 4)
    c.send(b"\r\n")
    assert c.until(b"a2 ").startswith(b"a2 OK")
    c.send(b"a3 LOGOUT\r\n")
    c.close()
