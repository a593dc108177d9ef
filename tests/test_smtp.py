"""SMTP with real clients (smtplib, swaks): delivery, the reply codes of the issue, submission."""

import email
import imaplib
import smtplib
import ssl
import subprocess

import pytest

from ternlib import PASSWORD, Tern, message, wait_until


def inbox_messages(t, user="bob@test.example"):
    if t.plaintext_auth:
        imap = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    else:
        imap = imaplib.IMAP4_SSL("127.0.0.1", t.ports["imaps"], ssl_context=ssl._create_unverified_context())
    imap.login(user, PASSWORD)
    imap.select("INBOX", readonly=True)
    _, data = imap.uid("SEARCH", None, "ALL")
    out = []
    for uid in data[0].split():
        _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
        out.append(email.message_from_bytes(parts[0][1]))
    imap.logout()
    return out


def smtp(t, port="smtp"):
    s = smtplib.SMTP("127.0.0.1", t.ports[port], timeout=30)
    s.ehlo("client.test")
    return s


def test_mx_delivery_adds_trace_headers(tern):
    s = smtp(tern)
    refused = s.sendmail("alice@remote.example", ["bob@test.example", "Carol@Test.Example"],
                         message("hello bob"))
    assert refused == {}
    s.quit()
    for user in ("bob@test.example", "carol@test.example"):
        msgs = inbox_messages(tern, user)
        assert len(msgs) == 1
        assert msgs[0]["Subject"] == "hello bob"
        assert msgs[0]["Return-Path"] == "<alice@remote.example>"
        assert "mx.test.example" in msgs[0]["Received"]


def test_ehlo_extensions(tern):
    s = smtp(tern)
    for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "starttls", "smtputf8"):
        assert s.has_extn(ext), ext
    assert not s.has_extn("auth"), "no AUTH on the MX port"
    s.quit()


@pytest.mark.parametrize(
    "commands, code, enhanced",
    [
        ([("MAIL FROM:<a@remote.example>", 250), ("RCPT TO:<x@elsewhere.example>", None)], 550, b"5.7.1"),
        ([("MAIL FROM:<a@remote.example>", 250), ("RCPT TO:<nobody@test.example>", None)], 550, b"5.1.1"),
        ([("RCPT TO:<bob@test.example>", None)], 503, b"5.5.1"),
        ([("DATA", None)], 503, b"5.5.1"),
        ([("MAIL FROM:<a@remote.example>", 250), ("DATA", None)], 503, b"5.5.1"),
        ([("MAIL FROM:<a@remote.example> SIZE=999999999999", None)], 552, b"5.3.4"),
        ([("MAIL FROM:not-an-address", None)], 501, b"5.5"),
        ([("FROBNICATE", None)], 500, b"5.5"),
    ],
)
def test_reply_codes(tern, commands, code, enhanced):
    s = smtp(tern)
    for i, (line, expect) in enumerate(commands):
        got, text = s.docmd(line)
        if i < len(commands) - 1:
            assert got == expect, (line, got, text)
    assert got == code, (commands, got, text)
    assert text.startswith(enhanced), text
    # The session is still usable after the error.
    assert s.noop()[0] == 250
    s.quit()


def test_limits_recipients_size_and_quota(tmp_path):
    t = Tern(tmp_path / "node", limits={"max_recipients": 3, "max_message_size": 20000}).start()
    try:
        t.cli("domain", "add", "test.example")
        t.add_account("bob@test.example")
        t.add_account("size@test.example")
        s = smtp(t)
        s.docmd("MAIL FROM:<a@remote.example>")
        for _ in range(3):
            assert s.docmd("RCPT TO:<bob@test.example>")[0] == 250
        code, text = s.docmd("RCPT TO:<bob@test.example>")
        assert (code, text[:5]) == (452, b"4.5.3")
        s.rset()
        # smtplib announces SIZE=, so the server refuses at MAIL already.
        with pytest.raises(smtplib.SMTPSenderRefused) as big:
            s.sendmail("a@remote.example", ["bob@test.example"], message("big", "x" * 30000))
        assert big.value.smtp_code == 552 and big.value.smtp_error.startswith(b"5.3.4")
        # Without SIZE=, the limit is enforced on the data itself, answered once at the end.
        assert s.docmd("MAIL FROM:<a@remote.example>")[0] == 250
        assert s.docmd("RCPT TO:<bob@test.example>")[0] == 250
        assert s.docmd("DATA")[0] == 354
        s.send(message("big", "x" * 30000) + b"\r\n.\r\n")
        code, text = s.getreply()
        assert (code, text[:5]) == (552, b"5.3.4")
        # Quota, decided in the state machine: measure what one stored copy costs (trace
        # headers included; "size@" and "tiny@" have the same length), then give "tiny" room
        # for exactly one.
        mail = message("fits", "y" * 1000)
        s.sendmail("a@remote.example", ["size@test.example"], mail)
        imap = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
        imap.login("size@test.example", PASSWORD)
        imap.select("INBOX")
        stored = int(imap.fetch("1", "(RFC822.SIZE)")[1][0].split()[-1].rstrip(b")"))
        imap.logout()
        t.add_account("tiny@test.example", quota=stored)
        t.add_account("room@test.example", quota=stored + 10)
        s.sendmail("a@remote.example", ["tiny@test.example"], mail)
        # Full to the byte: refused at RCPT, before any data is sent.
        code, text = s.docmd("MAIL FROM:<a@remote.example>")
        code, text = s.docmd("RCPT TO:<tiny@test.example>")
        assert (code, text[:5]) == (452, b"4.2.2")
        s.rset()
        # Room left, but not enough for this message: refused at the end of DATA.
        s.sendmail("a@remote.example", ["room@test.example"], mail)
        # (Another message of the same size: the same bytes again would be a retry, stored once.)
        with pytest.raises(smtplib.SMTPDataError) as full:
            s.sendmail("a@remote.example", ["room@test.example"], message("fits", "y" * 1000))
        assert (full.value.smtp_code, full.value.smtp_error[:5]) == (552, b"5.2.2")
        assert s.noop()[0] == 250
        s.quit()
        assert len(inbox_messages(t, "bob@test.example")) == 0
    finally:
        t.kill()


def test_submission_requires_auth_and_queues_remote_mail(tern):
    s = smtp(tern, "submission")
    assert s.has_extn("starttls")
    code, text = s.docmd("MAIL FROM:<bob@test.example>")
    assert (code, text[:5]) == (530, b"5.7.0")
    s.starttls(context=ssl._create_unverified_context())
    s.ehlo("client.test")
    assert "PLAIN" in s.esmtp_features.get("auth", "").upper()
    with pytest.raises(smtplib.SMTPAuthenticationError) as bad:
        s.login("bob@test.example", "wrong password")
    assert bad.value.smtp_code == 535
    s.login("bob@test.example", PASSWORD)
    # No sending as somebody else (RFC 6409 §6.1).
    code, text = s.docmd("MAIL FROM:<carol@test.example>")
    assert (code, text[:5]) == (553, b"5.7.1")
    # ... but as an alias that delivers to you, yes.
    tern.cli("alias", "add", "postmaster@test.example", "bob@test.example")
    assert s.docmd("MAIL FROM:<postmaster@test.example>")[0] == 250
    s.rset()
    s.sendmail("bob@test.example", ["someone@far.example", "carol@test.example"],
               message("outbound", sender="bob@test.example", to="someone@far.example"))
    s.quit()
    assert len(inbox_messages(tern, "carol@test.example")) == 1
    listing = tern.cli("queue", "list").stdout
    assert "someone@far.example" in listing and "remote" in listing


def test_auth_needs_tls_when_not_dev(tmp_path):
    t = Tern(tmp_path / "node", plaintext_auth=False).start()
    try:
        t.cli("domain", "add", "test.example")
        t.add_account("bob@test.example")
        s = smtp(t, "submission")
        assert not s.has_extn("auth")
        code, _ = s.docmd("AUTH PLAIN AGJvYkB0ZXN0LmV4YW1wbGUAeA==")
        assert code in (530, 538, 523)
        s.close()
        s = smtplib.SMTP_SSL("127.0.0.1", t.ports["submissions"], timeout=30,
                             context=ssl._create_unverified_context())
        s.ehlo("client.test")
        s.login("bob@test.example", PASSWORD)
        s.sendmail("bob@test.example", ["bob@test.example"], message("to myself"))
        s.quit()
        assert len(inbox_messages(t)) == 1
    finally:
        t.kill()


def test_swaks_mx_and_submission(tern):
    mx = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{tern.ports['smtp']}", "--from", "x@remote.example",
         "--to", "bob@test.example", "--header", "Subject: via swaks", "--body", "swaks body"],
        capture_output=True, text=True, timeout=60)
    assert mx.returncode == 0, mx.stdout + mx.stderr
    sub = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{tern.ports['submission']}", "--tls",
         "--auth", "PLAIN", "--auth-user", "carol@test.example", "--auth-password", PASSWORD,
         "--from", "carol@test.example", "--to", "bob@test.example",
         "--header", "Subject: swaks submission"],
        capture_output=True, text=True, timeout=60)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    subjects = sorted(m["Subject"] for m in inbox_messages(tern))
    assert subjects == ["swaks submission", "via swaks"]


def test_pipelined_transactions(tern):
    import socket

    sock = socket.create_connection(("127.0.0.1", tern.ports["smtp"]), timeout=30)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220")
    body = message("pipelined").replace(b"\r\n.", b"\r\n..")
    sock.sendall(b"EHLO c\r\n")
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    sock.sendall(b"MAIL FROM:<p@remote.example>\r\nRCPT TO:<bob@test.example>\r\n"
                 b"RCPT TO:<nobody@test.example>\r\nDATA\r\n")
    replies = [f.readline()[:3] for _ in range(4)]
    assert replies == [b"250", b"250", b"550", b"354"]
    sock.sendall(body + b"\r\n.\r\nQUIT\r\n")
    assert f.readline().startswith(b"250")
    assert f.readline().startswith(b"221")
    sock.close()
    wait_until(lambda: len(inbox_messages(tern)) == 1, timeout=10, what="the pipelined message")


def send_once(t, sender, recipients, data):
    """One transaction on a new connection, as an MTA's retry would be; returns the final reply."""
    s = smtp(t)
    try:
        assert s.mail(sender)[0] == 250
        for r in recipients:
            assert s.rcpt(r)[0] == 250
        return s.data(data)
    finally:
        s.quit()


def test_a_retried_message_is_stored_once(tern):
    """A sender that never heard the 250 sends the same message again: it is answered 250 with
    the first attempt's queue id and stored once (cluster/jepsen.py tests the lost 250 itself)."""
    first = message("retried", message_id="<retried.1@tests.tern>")
    code, text = send_once(tern, "alice@remote.example", ["bob@test.example"], first)
    assert code == 250, text
    again = send_once(tern, "alice@remote.example", ["bob@test.example"], first)
    assert again == (code, text), "the retry must get the first attempt's reply and queue id"

    # Two recipients in either order are one transaction; each gets the message once.
    both = message("to two", message_id="<to-two.1@tests.tern>")
    a = send_once(tern, "alice@remote.example", ["bob@test.example", "carol@test.example"], both)
    b = send_once(tern, "alice@remote.example", ["carol@test.example", "bob@test.example"], both)
    assert a[0] == 250 and a == b

    # Not duplicates: other bytes (a re-composed message), another sender, a subset of the
    # recipients (those were not in a transaction of their own yet).
    recomposed = first.replace(b"10:00:00", b"10:00:01")
    assert send_once(tern, "alice@remote.example", ["bob@test.example"], recomposed)[0] == 250
    assert send_once(tern, "dave@remote.example", ["bob@test.example"], first)[0] == 250
    assert send_once(tern, "alice@remote.example", ["carol@test.example"], both)[0] == 250

    # Identical bytes without a Message-ID are not known to be one message: each is stored.
    anonymous = b"Subject: no id\r\n\r\nsame bytes\r\n"
    assert send_once(tern, "alice@remote.example", ["bob@test.example"], anonymous)[0] == 250
    assert send_once(tern, "alice@remote.example", ["bob@test.example"], anonymous)[0] == 250

    subjects = sorted(m["Subject"] for m in inbox_messages(tern, "bob@test.example"))
    assert subjects == ["no id", "no id", "retried", "retried", "retried", "to two"], subjects
    subjects = sorted(m["Subject"] for m in inbox_messages(tern, "carol@test.example"))
    assert subjects == ["to two", "to two"], subjects
