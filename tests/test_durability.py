"""Crash durability: every message that got a 250 survives kill -9, exactly once, same UIDs."""

import imaplib
import smtplib

from ternlib import PASSWORD, Tern, message

N = 40


def uids_by_message_id(t, user):
    imap = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    imap.login(user, PASSWORD)
    imap.select("INBOX", readonly=True)
    uidvalidity = imap.untagged_responses["UIDVALIDITY"][0]
    _, data = imap.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    seen = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        uid = int(item[0].split(b"UID ")[1].split()[0])
        mid = item[1].split(b":", 1)[1].strip().decode()
        seen.setdefault(mid, []).append(uid)
    imap.logout()
    return uidvalidity, seen


def test_kill_9_after_last_250_loses_nothing(tmp_path):
    t = Tern(tmp_path / "node").start()
    try:
        t.cli("domain", "add", "test.example")
        users = ["bob@test.example", "carol@test.example", "dave@test.example"]
        for u in users:
            t.add_account(u)
        acked = {u: [] for u in users}
        s = smtplib.SMTP("127.0.0.1", t.ports["smtp"], timeout=30)
        for i in range(N):
            user = users[i % len(users)]
            mid = f"<durable-{i}@tests.tern>"
            s.sendmail("a@remote.example", [user], message(f"durable {i}", to=user, message_id=mid))
            acked[user].append(mid)  # sendmail returned: the server said 250
        t.kill()  # right after the last 250, no QUIT, no graceful shutdown
        t.start()
        before = {}
        for u in users:
            uidvalidity, seen = uids_by_message_id(t, u)
            assert sorted(seen) == sorted(acked[u]), f"{u}: lost {set(acked[u]) - set(seen)}"
            assert all(len(v) == 1 for v in seen.values()), f"{u}: duplicates {seen}"
            before[u] = (uidvalidity, seen)
        # A second crash and restart: UIDs and UIDVALIDITY do not move.
        t.kill()
        t.start()
        for u in users:
            assert uids_by_message_id(t, u) == before[u]
    finally:
        t.kill()


def test_graceful_restart_keeps_mail(tmp_path):
    t = Tern(tmp_path / "node").start()
    try:
        t.cli("domain", "add", "test.example")
        t.add_account("bob@test.example")
        s = smtplib.SMTP("127.0.0.1", t.ports["smtp"], timeout=30)
        s.sendmail("a@remote.example", ["bob@test.example"], message("before restart", message_id="<g@t>"))
        s.quit()
        assert t.stop() == 0
        t.start()
        _, seen = uids_by_message_id(t, "bob@test.example")
        assert list(seen) == ["<g@t>"]
    finally:
        t.kill()
