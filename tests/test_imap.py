"""IMAP with Python's imaplib: the mailbox model, FETCH/STORE/COPY/MOVE/EXPUNGE, APPEND, IDLE."""

import imaplib
import re
import smtplib
import socket
import ssl
import time

import pytest

from ternlib import PASSWORD, message, wait_until


def login(t, user="bob@test.example", port="imap"):
    imap = imaplib.IMAP4("127.0.0.1", t.ports[port])
    imap.login(user, PASSWORD)
    return imap


def deliver(t, subject, to="bob@test.example", body="Hello.\r\n"):
    s = smtplib.SMTP("127.0.0.1", t.ports["smtp"], timeout=30)
    s.sendmail("alice@remote.example", [to], message(subject, body, to=to))
    s.quit()


def test_new_account_has_special_use_mailboxes(tern):
    imap = login(tern)
    typ, data = imap.list()
    assert typ == "OK"
    listing = b"\n".join(data).decode()
    for name, attr in [("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
                       ("Junk", "\\Junk"), ("Archive", "\\Archive")]:
        assert re.search(rf'\(.*{re.escape(attr)}.*\) "/" "?{name}"?', listing), (name, listing)
    assert "INBOX" in listing
    # RFC 6154 selection option: only the special-use mailboxes.
    typ, data = imap._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
    special = imap._untagged_response(typ, data, "LIST")[1]
    assert len(special) == 5 and not any(b'"INBOX"' in x for x in special), special
    imap.logout()


def test_capabilities_and_starttls(tern):
    imap = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    caps = set(imap.capabilities)
    for cap in ("IMAP4REV1", "IMAP4REV2", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "LITERAL+",
                "NAMESPACE", "ID", "ENABLE", "UNSELECT", "STARTTLS"):
        assert cap in caps, cap
    imap.starttls(ssl_context=ssl._create_unverified_context())
    assert imap.login("bob@test.example", PASSWORD)[0] == "OK"
    imap.logout()
    imaps = imaplib.IMAP4_SSL("127.0.0.1", tern.ports["imaps"], ssl_context=ssl._create_unverified_context())
    assert imaps.login("bob@test.example", PASSWORD)[0] == "OK"
    imaps.logout()


def test_fetch_store_search_copy_move_expunge(tern):
    for i in range(3):
        deliver(tern, f"message {i}")
    imap = login(tern)
    typ, data = imap.select("INBOX")
    assert typ == "OK" and data[0] == b"3"
    uidvalidity = imap.untagged_responses.get("UIDVALIDITY", [b"?"])[0]
    typ, data = imap.fetch("1:3", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
    assert typ == "OK"
    text = b" ".join(d[0] if isinstance(d, tuple) else d for d in data)
    assert b"message 0" in text and b"ENVELOPE" in text and b"BODYSTRUCTURE" in text
    typ, data = imap.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: message 1" in data[0][1]
    typ, data = imap.fetch("2", "(BODY.PEEK[TEXT]<0.5>)")
    assert data[0][1] == b"Hello"
    assert imap.fetch("1", "(FLAGS)")[1][0].find(b"\\Seen") == -1
    imap.fetch("1", "(BODY[])")
    assert b"\\Seen" in imap.fetch("1", "(FLAGS)")[1][0]
    imap.store("2", "+FLAGS", "(\\Flagged $Important)")
    assert imap.search(None, "FLAGGED")[1][0] == b"2"
    assert imap.search(None, "UNSEEN")[1][0].split() == [b"2", b"3"]
    assert imap.search(None, 'SUBJECT "message 2"')[1][0] == b"3"
    assert imap.search(None, "KEYWORD", "$Important")[1][0] == b"2"
    typ, data = imap.uid("SEARCH", None, "UID", "2:*")
    assert data[0].split() == [b"2", b"3"]
    typ, data = imap.copy("1", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0]
    typ, data = imap.uid("MOVE", "3", "Trash")
    assert typ == "OK"
    imap.store("1", "+FLAGS", "\\Deleted")
    typ, data = imap.expunge()
    # imaplib also keeps the EXPUNGE the MOVE above sent; ours is the last one.
    assert typ == "OK" and data[-1] == b"1"
    typ, data = imap.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
    assert b"MESSAGES 1" in data[0] and b"UIDNEXT 4" in data[0]
    assert uidvalidity in data[0]
    assert b"MESSAGES 1" in imap.status("Trash", "(MESSAGES)")[1][0]
    assert b"MESSAGES 1" in imap.status("Archive", "(MESSAGES)")[1][0]
    imap.close()
    imap.logout()


def test_append_create_rename_delete_subscribe(tern):
    imap = login(tern)
    assert imap.create("Projects/Tern")[0] == "OK"
    assert imap.create("Projects/Tern")[0] == "NO"
    typ, data = imap.append("Projects/Tern", "(\\Seen)", None, message("appended"))
    assert typ == "OK" and b"APPENDUID" in data[0]
    assert imap.rename("Projects/Tern", "Projects/Done")[0] == "OK"
    assert b"MESSAGES 1" in imap.status("Projects/Done", "(MESSAGES)")[1][0]
    assert imap.subscribe("Projects/Done")[0] == "OK"
    assert b"Projects/Done" in b"".join(imap.lsub()[1])
    assert imap.delete("Projects/Done")[0] == "OK"
    assert imap.select("Projects/Done")[0] == "NO"
    assert imap.delete("INBOX")[0] == "NO"
    imap.logout()


def test_non_ascii_mailbox_names_travel_as_modified_utf7(tern):
    imap = login(tern)
    assert imap.create("Entw&APw-rfe/&ZeVnLIqe-")[0] == "OK"  # "Entwürfe/日本語"
    listing = b"\n".join(imap.list()[1])
    assert b'"Entw&APw-rfe/&ZeVnLIqe-"' in listing and b'"Entw&APw-rfe"' in listing
    assert imap.select("Entw&APw-rfe/&ZeVnLIqe-")[0] == "OK"
    # A name that is not modified UTF-7 cannot exist: NO (not BAD), like any impossible name.
    typ, data = imap.create("bad&Jjo!")
    assert typ == "NO" and b"modified UTF-7" in data[0], (typ, data)
    assert imap.select("bad&Jjo!")[0] == "NO"
    imap.logout()


def test_literal_plus_append_and_idle_wakeup(tern):
    sock = socket.create_connection(("127.0.0.1", tern.ports["imap"]), timeout=30)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")

    def command(line, tag):
        sock.sendall(line)
        lines = []
        while True:
            got = f.readline()
            assert got, "connection closed"
            lines.append(got)
            if got.startswith(tag + b" "):
                return lines

    assert command(b'a LOGIN bob@test.example "' + PASSWORD.encode() + b'"\r\n', b"a")[-1].startswith(b"a OK")
    body = message("literal plus")
    out = command(b"b APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n", b"b")
    assert out[-1].startswith(b"b OK"), out
    assert command(b"c SELECT INBOX\r\n", b"c")[-1].startswith(b"c OK")
    sock.sendall(b"d IDLE\r\n")
    assert f.readline().startswith(b"+")
    started = time.monotonic()
    deliver(tern, "wake up")
    got = f.readline()
    assert got == b"* 2 EXISTS\r\n", got
    # Not a timing assertion on speed, only that IDLE pushed it rather than a poll much later.
    assert time.monotonic() - started < 30
    # IMAP4rev1: this session is the first to see both messages, so both are \Recent here.
    assert f.readline() == b"* 2 RECENT\r\n"
    sock.sendall(b"DONE\r\n")
    assert f.readline().startswith(b"d OK")
    sock.close()


def test_two_sessions_see_each_others_changes(tern):
    deliver(tern, "shared")
    a, b = login(tern), login(tern)
    a.select("INBOX")
    b.select("INBOX")
    a.store("1", "+FLAGS", "\\Answered")
    typ, data = b.noop()
    flags = b.untagged_responses.get("FETCH", [])
    assert any(b"\\Answered" in x for x in flags), (data, b.untagged_responses)
    a.logout()
    b.logout()


def test_bad_login_is_refused(tern):
    imap = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    try:
        imap.login("bob@test.example", "nope")
        raise AssertionError("login with a wrong password succeeded")
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e) or "failed" in str(e).lower()
