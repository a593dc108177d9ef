"""POP3 with Python's poplib: the maildrop, deletion at QUIT, the IN-USE lock."""

import poplib
import socket
import smtplib
import ssl

import pytest

from ternlib import PASSWORD, message, wait_until


def deliver(t, n):
    s = smtplib.SMTP("127.0.0.1", t.ports["smtp"], timeout=30)
    for i in range(n):
        s.sendmail("alice@remote.example", ["bob@test.example"], message(f"pop {i}", f"line\r\n.dot\r\n{i}\r\n"))
    s.quit()


def session(t):
    p = poplib.POP3("127.0.0.1", t.ports["pop3"], timeout=30)
    p.user("bob@test.example")
    p.pass_(PASSWORD)
    return p


def test_retr_top_uidl_dele_quit(tern):
    deliver(tern, 3)
    p = session(tern)
    count, size = p.stat()
    assert count == 3 and size > 0
    listing = p.list()[1]
    assert len(listing) == 3
    uidls = [line.split()[1] for line in p.uidl()[1]]
    assert len(set(uidls)) == 3
    lines = p.retr(2)[1]
    assert b"Subject: pop 1" in lines and b".dot" in lines
    top = p.top(1, 0)[1]
    assert b"Subject: pop 0" in top and b"line" not in top
    p.dele(1)
    with pytest.raises(poplib.error_proto):
        p.retr(1)
    p.rset()
    p.dele(1)
    p.quit()
    p = session(tern)
    assert p.stat()[0] == 2
    assert [line.split()[1] for line in p.uidl()[1]] == uidls[1:]
    p.quit()


def test_second_session_gets_in_use(tern):
    first = session(tern)
    second = poplib.POP3("127.0.0.1", tern.ports["pop3"], timeout=30)
    second.user("bob@test.example")
    with pytest.raises(poplib.error_proto) as err:
        second.pass_(PASSWORD)
    assert b"[IN-USE]" in err.value.args[0]
    first.quit()
    third = session(tern)
    third.quit()


def test_disconnect_without_quit_deletes_nothing(tern):
    deliver(tern, 1)
    p = session(tern)
    p.dele(1)
    # poplib's file object keeps the socket open; shut it down so the server sees the drop.
    p.sock.shutdown(socket.SHUT_RDWR)
    p.sock.close()

    def relogin():
        s = session(tern)
        n = s.stat()[0]
        s.quit()
        return n == 1

    wait_until(relogin, timeout=15, what="the maildrop lock to be released")


def test_capa_stls_and_pop3s(tern):
    p = poplib.POP3("127.0.0.1", tern.ports["pop3"], timeout=30)
    caps = p.capa()
    for c in ("TOP", "UIDL", "USER", "RESP-CODES", "STLS", "SASL"):
        assert c in caps, c
    p.stls(context=ssl._create_unverified_context())
    p.user("bob@test.example")
    p.pass_(PASSWORD)
    p.quit()
    s = poplib.POP3_SSL("127.0.0.1", tern.ports["pop3s"], context=ssl._create_unverified_context())
    s.user("bob@test.example")
    s.pass_(PASSWORD)
    assert s.stat()[0] == 0
    s.quit()
