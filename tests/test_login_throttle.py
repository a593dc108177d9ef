"""Password guessing is throttled per client address and per account, across connections and
protocols: after a few failures attempts wait, after more they are refused unchecked with each
protocol's temporary-failure reply (SMTP 454 4.7.0, IMAP NO [UNAVAILABLE], POP3 -ERR [AUTH]),
while other addresses — and the account owner's known devices — log in normally."""

import base64
import socket

import pytest

from ternlib import PASSWORD, Tern

WAIT = 30
DELAY_AFTER = 2
REFUSE_AFTER = 4


@pytest.fixture(scope="module")
def tern(tmp_path_factory):
    server = Tern(tmp_path_factory.mktemp("throttle") / "node", limits={
        "login_delay_after_failures": DELAY_AFTER,
        "login_refuse_after_failures": REFUSE_AFTER,
        "login_failure_window_secs": 600,
        "login_max_delay_secs": 1,
        "max_auth_failures": 100,
    }).start()
    server.cli("domain", "add", "test.example")
    for user in ("bob", "carol", "dave", "erin", "frank"):
        server.add_account(f"{user}@test.example")
    yield server
    server.kill()


class Line:
    """A line-oriented client connected from `source` (any 127.0.0.0/8 address)."""

    def __init__(self, port: int, source: str):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT,
                                             source_address=(source, 0))
        self.f = self.sock.makefile("rb")

    def send(self, line: str):
        self.sock.sendall(line.encode() + b"\r\n")

    def line(self) -> str:
        return self.f.readline().decode()

    def close(self):
        self.f.close()
        self.sock.close()


def imap_login(t, source: str, user: str, password: str) -> str:
    c = Line(t.ports["imap"], source)
    c.line()
    c.send(f'a1 LOGIN "{user}" "{password}"')
    while not (reply := c.line()).startswith("a1 ") and reply:
        pass
    c.close()
    return reply


def pop3_login(t, source: str, user: str, password: str) -> str:
    c = Line(t.ports["pop3"], source)
    c.line()
    c.send(f"USER {user}")
    c.line()
    c.send(f"PASS {password}")
    reply = c.line()
    c.close()
    return reply


def smtp_login(t, source: str, user: str, password: str) -> str:
    c = Line(t.ports["submission"], source)
    c.line()
    c.send("EHLO client.example")
    while not c.line().startswith("250 "):
        pass
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    c.send(f"AUTH PLAIN {token}")
    reply = c.line()
    c.close()
    return reply


def test_a_guessing_address_is_refused_across_protocols_while_others_log_in(tern):
    guesser = "127.0.0.20"
    # Failures through three protocols count together.
    assert imap_login(tern, guesser, "bob@test.example", "wrong1").startswith(
        "a1 NO [AUTHENTICATIONFAILED]")
    assert pop3_login(tern, guesser, "carol@test.example", "wrong2").startswith("-ERR [AUTH]")
    assert smtp_login(tern, guesser, "dave@test.example", "wrong3").startswith("535")
    # Past the delay threshold: still checked, only later.
    assert imap_login(tern, guesser, "nobody@test.example", "wrong4").startswith(
        "a1 NO [AUTHENTICATIONFAILED]")
    # Now refused unchecked, even with a right password, in every protocol.
    assert imap_login(tern, guesser, "bob@test.example", PASSWORD).startswith(
        "a1 NO [UNAVAILABLE]")
    assert smtp_login(tern, guesser, "bob@test.example", PASSWORD).startswith("454 4.7.0")
    reply = pop3_login(tern, guesser, "bob@test.example", PASSWORD)
    assert reply.startswith("-ERR [AUTH]") and "too many" in reply, reply
    # An IPv4 neighbour is another client: it logs in at once.
    assert imap_login(tern, "127.0.0.21", "bob@test.example", PASSWORD).startswith("a1 OK")
    assert smtp_login(tern, "127.0.0.21", "bob@test.example", PASSWORD).startswith("235")
    assert pop3_login(tern, "127.0.0.21", "bob@test.example", PASSWORD).startswith("+OK")


def test_an_attacked_account_refuses_strangers_but_not_its_known_devices(tern):
    owner = "127.0.0.30"
    assert imap_login(tern, owner, "erin@test.example", PASSWORD).startswith("a1 OK")
    for i in range(REFUSE_AFTER):
        reply = imap_login(tern, f"127.0.0.{31 + i}", "erin@test.example", f"guess{i}")
        assert reply.startswith("a1 NO [AUTHENTICATIONFAILED]"), reply
    # A new address is refused for this account, even with the right password...
    assert imap_login(tern, "127.0.0.40", "erin@test.example", PASSWORD).startswith(
        "a1 NO [UNAVAILABLE]")
    # ...but may log into another account, and the owner's device is let in.
    assert imap_login(tern, "127.0.0.40", "frank@test.example", PASSWORD).startswith("a1 OK")
    assert imap_login(tern, owner, "erin@test.example", PASSWORD).startswith("a1 OK")
    assert pop3_login(tern, owner, "erin@test.example", PASSWORD).startswith("+OK")
