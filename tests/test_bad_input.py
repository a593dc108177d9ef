"""Hostile and malformed input: each case gets the right error or a clean close, and the server
keeps serving a second, well-behaved client."""

import imaplib
import poplib
import smtplib
import socket

import pytest

from ternlib import PASSWORD, wait_until

LOGIN_IMAP = b'a0 LOGIN bob@test.example "' + PASSWORD.encode() + b'"\r\n'


class Raw:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.f = self.sock.makefile("rb")
        self.greeting = self.f.readline()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.f.readline()

    def reply(self, final_prefix: bytes) -> bytes:
        """Reads lines until one starts with `final_prefix` (or EOF) and returns it."""
        while True:
            got = self.f.readline()
            if not got or got.startswith(final_prefix):
                return got

    def close(self):
        # The makefile keeps the socket open; shut it down so the server sees the close.
        self.sock.shutdown(socket.SHUT_RDWR)
        self.f.close()
        self.sock.close()


def smtp_ok(t):
    s = smtplib.SMTP("127.0.0.1", t.ports["smtp"], timeout=20)
    assert s.ehlo("ok.test")[0] == 250
    s.quit()


def imap_ok(t):
    i = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    assert i.login("bob@test.example", PASSWORD)[0] == "OK"
    i.logout()


def pop_ok(t):
    p = poplib.POP3("127.0.0.1", t.ports["pop3"], timeout=20)
    assert p.capa()
    p.quit()


SMTP_CASES = [
    ("overlong line", [b"EHLO " + b"x" * 20000 + b"\r\n"], b"500"),
    ("binary garbage", [b"\x00\xff\xfe\x80garbage\r\n"], b"500"),
    ("rcpt before mail", [b"EHLO c\r\n", b"RCPT TO:<bob@test.example>\r\n"], b"503"),
    ("mail without angle brackets", [b"EHLO c\r\n", b"MAIL FROM:bob\r\n"], b"501"),
    ("unknown parameter", [b"EHLO c\r\n", b"MAIL FROM:<a@b.example> FROB=1\r\n"], b"555"),
    ("nul in the middle", [b"EHLO c\r\n", b"MAIL FROM:<a\x00@b.example>\r\n"], b"501"),
]


@pytest.mark.parametrize("name, sends, expect", SMTP_CASES, ids=[c[0] for c in SMTP_CASES])
def test_smtp_bad_input(tern, name, sends, expect):
    raw = Raw(tern.ports["smtp"])
    assert raw.greeting.startswith(b"220")
    for data in sends:
        raw.send(data)
        if data.startswith(b"EHLO c"):
            raw.reply(b"250 ")
    got = raw.line()
    assert got.startswith(expect[:1]) and (got.startswith(expect) or expect == b"555" and got[:3] in (b"501", b"555")), got
    raw.send(b"NOOP\r\n")
    assert raw.line().startswith(b"250"), "session unusable after the error"
    raw.close()
    smtp_ok(tern)


def test_smtp_disconnect_mid_data_commits_nothing(tern):
    raw = Raw(tern.ports["smtp"])
    raw.send(b"EHLO c\r\n")
    raw.reply(b"250 ")
    raw.send(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n")
    assert [raw.line()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
    raw.send(b"Subject: half\r\n\r\nonly half of the bod")
    raw.close()
    smtp_ok(tern)
    i = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    i.login("bob@test.example", PASSWORD)
    assert i.select("INBOX")[1][0] == b"0"
    i.logout()


def inbox_count(t) -> int:
    i = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    i.login("bob@test.example", PASSWORD)
    count = int(i.select("INBOX")[1][0])
    i.logout()
    return count


def rest_of_session(raw: Raw) -> list[bytes]:
    """Every line the server sends until it closes the connection."""
    lines = []
    while line := raw.line():
        lines.append(line)
    return lines


SMUGGLED = b"MAIL FROM:<evil@x.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\nsmuggled\r\n.\r\n"

# Every place a bare LF or CR can take, in commands and in DATA; what follows it would be a whole
# smuggled transaction if the server kept reading.
BARE_COMMAND_CASES = [
    ("LF after a command", b"NOOP\n" + SMUGGLED),
    ("CR inside a command", b"NOOP\rRSET\r\n" + SMUGGLED),
    ("lone LF", b"\n" + SMUGGLED),
    ("CR before CRLF", b"NOOP\r\r\n" + SMUGGLED),
]
BARE_DATA_CASES = [
    ("LF.LF", b"Subject: s\r\n\r\nfirst\n.\n" + SMUGGLED),
    ("CRLF.LF", b"Subject: s\r\n\r\nfirst\r\n.\n" + SMUGGLED),
    ("LF.CRLF", b"Subject: s\r\n\r\nfirst\n.\r\n" + SMUGGLED),
    ("CR.CR", b"Subject: s\r\n\r\nfirst\r.\r" + SMUGGLED),
    ("bare LF in a header", b"Subject: s\nX: y\r\n\r\nbody\r\n.\r\n" + SMUGGLED),
    ("bare CR in the body", b"Subject: s\r\n\r\nbo\rdy\r\n.\r\n" + SMUGGLED),
]


@pytest.mark.parametrize("name, data", BARE_COMMAND_CASES, ids=[c[0] for c in BARE_COMMAND_CASES])
def test_smtp_bare_line_ending_in_a_command_closes_the_session(tern, name, data):
    before = inbox_count(tern)
    raw = Raw(tern.ports["smtp"])
    raw.send(b"EHLO c\r\n")
    raw.reply(b"250 ")
    raw.send(data)
    lines = rest_of_session(raw)
    raw.close()
    assert lines and lines[-1].startswith(b"521 5.5.2"), lines
    assert not any(line.startswith((b"250", b"354")) for line in lines), lines
    assert inbox_count(tern) == before
    smtp_ok(tern)


@pytest.mark.parametrize("name, data", BARE_DATA_CASES, ids=[c[0] for c in BARE_DATA_CASES])
def test_smtp_bare_line_ending_in_data_stores_nothing_and_closes(tern, name, data):
    """SMTP smuggling: only CRLF.CRLF ends DATA; at the first bare LF or CR the server answers
    and closes, so neither the message nor what was pipelined behind it is taken."""
    before = inbox_count(tern)
    raw = Raw(tern.ports["smtp"])
    raw.send(b"EHLO c\r\n")
    raw.reply(b"250 ")
    raw.send(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n")
    assert [raw.line()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
    raw.send(data)
    lines = rest_of_session(raw)
    raw.close()
    assert lines == [lines[0]] and lines[0].startswith(b"521 5.5.2"), lines
    assert inbox_count(tern) == before
    smtp_ok(tern)


def test_imap_bare_line_ending_closes_the_session(tern):
    raw = Raw(tern.ports["imap"])
    raw.send(LOGIN_IMAP)
    assert raw.reply(b"a0 ").startswith(b"a0 OK")
    raw.send(b"a1 NOOP\na2 CREATE smuggled\r\n")
    lines = rest_of_session(raw)
    raw.close()
    assert lines and lines[-1].startswith(b"* BYE"), lines
    assert not any(line.startswith((b"a1", b"a2")) for line in lines), lines
    i = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    i.login("bob@test.example", PASSWORD)
    assert b"smuggled" not in b"".join(i.list()[1])
    i.logout()


def test_pop3_bare_line_ending_closes_the_session(tern):
    raw = Raw(tern.ports["pop3"])
    raw.send(b"CAPA\nQUIT\r\n")
    lines = rest_of_session(raw)
    raw.close()
    assert lines == [lines[0]] and lines[0].startswith(b"-ERR"), lines
    pop_ok(tern)


IMAP_CASES = [
    # Lines up to 64 KiB are read (Dovecot's limit); past it, the command is answered by tag.
    ("overlong line", [b"a1 NOOP " + b"x" * 70000 + b"\r\n"], b"a1 BAD", True),
    ("overlong line, no tag", [b"x" * 70000 + b"\r\n"], b"* BAD", True),
    ("garbage", [b"\x00\xff\xfe\r\n"], b"* BAD", True),
    ("no tag", [b"\r\n"], b"* BAD", True),
    ("unknown command", [b"a2 FROB\r\n"], b"a2 BAD", True),
    ("select before login", [b"a3 SELECT INBOX\r\n"], b"a3 BAD", True),
    ("bad literal", [LOGIN_IMAP, b"a4 CREATE {abc}\r\n"], b"a4 BAD", True),
    ("huge literal", [LOGIN_IMAP, b"a5 APPEND INBOX {99999999999}\r\n"], b"a5 ", True),
    ("unbalanced parens", [LOGIN_IMAP, b"a6 SELECT INBOX\r\n", b"a7 FETCH 1 (FLAGS\r\n"], b"a7 BAD", True),
    ("bad sequence set", [LOGIN_IMAP, b"a8 SELECT INBOX\r\n", b"a9 FETCH 0:x FLAGS\r\n"], b"a9 BAD", True),
]


@pytest.mark.parametrize("name, sends, expect, usable", IMAP_CASES, ids=[c[0] for c in IMAP_CASES])
def test_imap_bad_input(tern, name, sends, expect, usable):
    raw = Raw(tern.ports["imap"])
    assert raw.greeting.startswith(b"* OK")
    for data in sends[:-1]:
        raw.send(data)
        tag = data.split(b" ", 1)[0]
        assert b" OK" in raw.reply(tag + b" ")
    raw.send(sends[-1])
    got = raw.reply(expect[:3] if expect.startswith(b"a") else b"* BAD")
    assert got.startswith(expect), got
    if expect == b"a5 ":
        assert got[3:5] in (b"NO", b"BA"), got  # refused, never "+ Ready"
    raw.send(b"z1 NOOP\r\n")
    assert raw.reply(b"z1 ").startswith(b"z1 OK"), "session unusable after the error"
    raw.close()
    imap_ok(tern)


POP_CASES = [
    ("stat before auth", [b"STAT\r\n"], b"-ERR"),
    ("overlong line", [b"USER " + b"x" * 20000 + b"\r\n"], b"-ERR"),
    ("garbage", [b"\x00\xff\xfe\r\n"], b"-ERR"),
    ("pass before user", [b"PASS x\r\n"], b"-ERR"),
    ("retr not a number", [b"USER bob@test.example\r\n", b"PASS " + PASSWORD.encode() + b"\r\n", b"RETR abc\r\n"], b"-ERR"),
    ("retr out of range", [b"USER bob@test.example\r\n", b"PASS " + PASSWORD.encode() + b"\r\n", b"RETR 99\r\n"], b"-ERR"),
]


@pytest.mark.parametrize("name, sends, expect", POP_CASES, ids=[c[0] for c in POP_CASES])
def test_pop3_bad_input(tern, name, sends, expect):
    raw = Raw(tern.ports["pop3"])
    assert raw.greeting.startswith(b"+OK")
    for data in sends[:-1]:
        raw.send(data)
        assert raw.line().startswith(b"+OK")
    raw.send(sends[-1])
    assert raw.line().startswith(expect)
    raw.send(b"NOOP\r\n")
    assert raw.line()[:1] in (b"+", b"-")  # still answering
    raw.send(b"QUIT\r\n")
    assert raw.line().startswith(b"+OK")
    raw.close()
    pop_ok(tern)


def test_connection_flood_from_one_ip_is_capped(tmp_path):
    from ternlib import Tern

    t = Tern(tmp_path / "node", limits={"max_connections_per_ip": 5}).start()
    try:
        socks = [Raw(t.ports["smtp"]) for _ in range(5)]
        assert all(s.greeting.startswith(b"220") for s in socks)
        extra = Raw(t.ports["smtp"])
        assert extra.greeting.startswith(b"421"), extra.greeting
        extra.close()
        for s in socks:
            s.close()
        def slot_free():
            probe = Raw(t.ports["smtp"])
            ok = probe.greeting.startswith(b"220")
            probe.close()
            return ok

        wait_until(slot_free, timeout=15, what="slots to be released")
    finally:
        t.kill()


def test_each_protocol_has_its_own_connection_caps(tmp_path):
    from ternlib import Tern

    t = Tern(tmp_path / "node", limits={
        "max_connections_per_ip": 10,
        "pop3": "{ max_connections_per_ip = 2, max_connections = 100 }",
        "smtp": "{ max_connections_per_ip = 100, max_connections = 3 }",
    }).start()
    try:
        pops = [Raw(t.ports["pop3"]) for _ in range(2)]
        assert all(p.greeting.startswith(b"+OK") for p in pops)
        extra = Raw(t.ports["pop3"])
        assert extra.greeting.startswith(b"-ERR [SYS/TEMP]"), extra.greeting
        extra.close()
        # The same client still reaches the other protocols.
        imap = Raw(t.ports["imap"])
        assert imap.greeting.startswith(b"* OK"), imap.greeting
        smtps = [Raw(t.ports["smtp"]) for _ in range(3)]
        assert all(s.greeting.startswith(b"220") for s in smtps)
        # SMTP's own total is full; submission is another protocol.
        extra = Raw(t.ports["smtp"])
        assert extra.greeting.startswith(b"421"), extra.greeting
        extra.close()
        submission = Raw(t.ports["submission"])
        assert submission.greeting.startswith(b"220"), submission.greeting
        # Past the server-wide per-IP cap (10: 2 + 1 + 3 + 1 open), every protocol refuses.
        more = [Raw(t.ports["imap"]) for _ in range(3)]
        assert all(m.greeting.startswith(b"* OK") for m in more)
        refused = Raw(t.ports["imap"])
        assert refused.greeting.startswith(b"* BYE"), refused.greeting
        for s in pops + smtps + more + [imap, submission, refused]:
            s.close()
    finally:
        t.kill()
