"""IMAP extensions checked with Python's imaplib: QUOTA (RFC 9208) from the account's quota,
STATUS DELETED / DELETED-STORAGE / APPENDLIMIT, and the APPENDLIMIT capability."""

import imaplib

from ternlib import PASSWORD, message


def login(tern, user="bob@test.example"):
    imap = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    imap.login(user, PASSWORD)
    return imap


def test_quota_root_and_usage_follow_the_account_quota(tern):
    tern.add_account("quota@test.example", quota=1024 * 1024)
    imap = login(tern, "quota@test.example")
    caps = imap.capabilities
    assert "QUOTA" in caps and "QUOTA=RES-STORAGE" in caps, caps
    body = message("quota", "x" * 20000 + "\r\n")
    assert imap.append("INBOX", None, None, body)[0] == "OK"
    typ, data = imap.getquotaroot("INBOX")
    assert typ == "OK", data
    roots, quotas = data
    assert roots == [b'"INBOX" ""'] or roots == [b'INBOX ""'], roots
    used_kib = (len(body) + 1023) // 1024
    assert quotas == [f'"" (STORAGE {used_kib} 1024)'.encode()], quotas
    assert imap.getquota('""')[1] == [f'"" (STORAGE {used_kib} 1024)'.encode()]
    # Only the administrator sets quotas; an unknown root does not exist.
    typ, data = imap._simple_command("SETQUOTA", '""', "(STORAGE 99999)")
    assert typ == "NO" and b"NOPERM" in data[0], (typ, data)
    assert imap.getquota("other")[0] == "NO"
    imap.logout()

    # An account without a quota has no quota root.
    imap = login(tern)
    assert imap.getquotaroot("INBOX")[1][0] in ([b'"INBOX"'], [b"INBOX"]), imap.getquotaroot("INBOX")
    assert imap.getquota('""')[0] == "NO"
    imap.logout()


def test_status_deleted_and_appendlimit(tern):
    imap = login(tern)
    limit = [c for c in imap.capabilities if c.startswith("APPENDLIMIT=")]
    assert limit and int(limit[0].split("=")[1]) > 0, imap.capabilities
    for i in range(3):
        imap.append("INBOX", "(\\Deleted)" if i else None, None, message(f"d{i}"))
    typ, data = imap.status("INBOX", "(MESSAGES DELETED DELETED-STORAGE APPENDLIMIT)")
    assert typ == "OK", data
    text = data[0].decode()
    assert "MESSAGES 3" in text and "DELETED 2" in text, text
    size = sum(len(message(f"d{i}")) for i in (1, 2))
    assert f"DELETED-STORAGE {size}" in text, text
    assert f"APPENDLIMIT {limit[0].split('=')[1]}" in text, text
    imap.logout()
