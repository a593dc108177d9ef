"""The test peers of tests/mta.py on their own: unbound answers what it was given (and NXDOMAIN
for the rest), Postfix stores what swaks sends and refuses what it was told to, dkim_verify tells
a good signature from a tampered message. No Tern here."""

import socket
import subprocess

import pytest

from mta import Postfix, Unbound, dkim_keypair, dkim_sign, dkim_verify

LONG_TXT = "k" * 600  # longer than one 255-byte character-string


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory):
    return dkim_keypair(tmp_path_factory.mktemp("dkim"))


@pytest.fixture(scope="module")
def unbound(tmp_path_factory, dkim_key):
    server = Unbound(tmp_path_factory.mktemp("dns"), [
        "remote.test. IN MX 10 mx.remote.test.",
        "mx.remote.test. IN A 127.0.0.1",
        'remote.test. IN TXT "v=spf1 ip4:127.0.0.1 -all"',
        f'long.remote.test. IN TXT "{LONG_TXT}"',
        f'sel._domainkey.signer.test. IN TXT "{dkim_key[1]}"',
    ])
    yield server
    server.stop()


def swaks(port, to, subject="fixture test", sender="sender@elsewhere.test"):
    return subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(port), "--ehlo", "client.test", "--from", sender,
         "--to", to, "--header", f"Subject: {subject}", "--body", "hello from swaks", "--timeout", "20"],
        capture_output=True, text=True, timeout=60)


def test_unbound_answers_mx_a_txt(unbound):
    r = unbound.query("remote.test", "MX")
    assert r.rcode() == 0
    assert [rr.to_text() for rrset in r.answer for rr in rrset] == ["10 mx.remote.test."]
    assert [rr.to_text() for rrset in unbound.query("mx.remote.test", "A").answer for rr in rrset] == ["127.0.0.1"]
    assert unbound.txt("remote.test") == ["v=spf1 ip4:127.0.0.1 -all"]
    assert unbound.txt("long.remote.test") == [LONG_TXT], "a long TXT is split into strings and served whole"


def test_unbound_nxdomain_inside_and_outside_zones(unbound):
    import dns.rcode

    assert unbound.query("nobody.remote.test", "A").rcode() == dns.rcode.NXDOMAIN
    # A name the fixture does not serve at all: answered locally, never looked up outside.
    assert unbound.query("www.example.org", "A").rcode() == dns.rcode.NXDOMAIN
    # A name that exists without records of the type asked: NOERROR, empty answer.
    r = unbound.query("remote.test", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer


def test_unbound_set_records_reloads(tmp_path):
    server = Unbound(tmp_path, ["a.test. IN A 127.0.0.5"])
    try:
        assert [rr.to_text() for rrset in server.query("a.test", "A").answer for rr in rrset] == ["127.0.0.5"]
        server.set_records(["b.test. IN A 127.0.0.6"])
        assert [rr.to_text() for rrset in server.query("b.test", "A").answer for rr in rrset] == ["127.0.0.6"]
        import dns.rcode

        assert server.query("a.test", "A").rcode() == dns.rcode.NXDOMAIN
    finally:
        server.stop()
    assert server.proc.poll() is not None


def test_postfix_stores_swaks_message_in_maildir(postfix):
    done = swaks(postfix.port, "user@remote.test", subject="maildir check")
    assert done.returncode == 0, done.stdout + done.stderr
    [msg] = postfix.wait_for("user@remote.test", 1, timeout=30)
    assert b"Subject: maildir check" in msg
    assert postfix.messages("other@remote.test") == []


def test_postfix_relays_for_nobody(postfix):
    done = swaks(postfix.port, "someone@not-served.test")
    assert done.returncode != 0
    assert "<** 554 5.7.1" in done.stdout, done.stdout


@pytest.mark.parametrize("code_text", ["450 4.2.0 try later", "550 5.1.1 no such user"])
def test_postfix_reject_and_accept(postfix, code_text):
    address = f"refused-{code_text[:3]}@remote.test"
    postfix.reject(address, code_text)
    done = swaks(postfix.port, address)
    assert done.returncode != 0
    assert f"<** {code_text[:9]}" in done.stdout, done.stdout
    assert postfix.messages(address) == []
    postfix.accept(address)
    done = swaks(postfix.port, address, subject="after accept")
    assert done.returncode == 0, done.stdout
    assert len(postfix.wait_for(address, 1, timeout=30)) == 1


def test_postfix_stop_closes_port(tmp_path):
    server = Postfix(tmp_path, ["stop.test"])
    port = server.port
    server.stop()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "nothing listens after stop()"


def test_dkim_verify(unbound, dkim_key):
    msg = (b"From: someone@signer.test\r\nTo: user@remote.test\r\nSubject: signed\r\n"
           b"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <signed.1@signer.test>\r\n\r\n"
           b"The body that is signed.\r\n")
    signed = dkim_sign(msg, "signer.test", dkim_key[0], selector="sel")
    assert dkim_verify(signed, unbound.port)
    assert dkim_verify(signed.replace(b"\r\n", b"\n"), unbound.port), "LF line ends (as in a Maildir) verify"
    assert not dkim_verify(signed.replace(b"The body", b"A body"), unbound.port), "tampered body"
    assert not dkim_verify(signed.replace(b"Subject: signed", b"Subject: forged"), unbound.port)
    unsigned_key = dkim_sign(msg, "signer.test", dkim_key[0], selector="nokey")
    assert not dkim_verify(unsigned_key, unbound.port), "no key published for this selector"
    assert not dkim_verify(msg, unbound.port), "no signature"


def test_postfix_hold_at_end_of_data_then_release(postfix):
    """The window a relay cannot see through: Postfix has the whole message, the client dies
    before the reply, and Postfix delivers it anyway."""
    import smtplib

    address = "held@remote.test"
    postfix.hold(address)
    s = smtplib.SMTP("127.0.0.1", postfix.port, timeout=30)
    s.ehlo("client.test")
    s.mail("sender@elsewhere.test")
    s.rcpt(address)
    s.putcmd("data")
    assert s.getreply()[0] == 354
    s.send(b"Subject: held\r\n\r\nheld body\r\n.\r\n")
    postfix.wait_held(address, timeout=30)
    assert postfix.messages(address) == []
    s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    s.sock.close()
    postfix.release(address)
    assert len(postfix.wait_for(address, 1, timeout=30)) == 1
