"""The admin CLI against a running node: the commands of the issue and their errors."""

import imaplib

from ternlib import PASSWORD


def test_domains_accounts_aliases_round_trip(fresh_tern):
    t = fresh_tern
    assert "domain example.org added" in t.cli("domain", "add", "Example.ORG").stdout
    assert t.cli("domain", "list").stdout.split() == ["example.org"]
    t.cli("account", "add", "Dave@example.org", "--password", "pw1", "--quota", "10M")
    listing = t.cli("account", "list").stdout
    assert "dave@example.org" in listing and str(10 << 20) in listing
    t.cli("alias", "add", "postmaster@example.org", "dave@example.org")
    assert "postmaster@example.org" in t.cli("alias", "list").stdout
    t.cli("account", "passwd", "dave@example.org", "--password", "pw2")
    imap = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    try:
        imap.login("dave@example.org", "pw1")
        raise AssertionError("old password still works")
    except imaplib.IMAP4.error:
        pass
    imap = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    assert imap.login("dave@example.org", "pw2")[0] == "OK"
    imap.logout()
    t.cli("alias", "del", "postmaster@example.org")
    t.cli("account", "del", "dave@example.org")
    assert "dave@example.org" not in t.cli("account", "list").stdout
    t.cli("domain", "del", "example.org")
    assert t.cli("domain", "list").stdout.strip() == ""


def test_clear_errors(fresh_tern):
    t = fresh_tern
    t.cli("domain", "add", "example.org")
    cases = [
        (["domain", "add", "example.org"], "exists"),
        (["domain", "add", "not a domain"], "invalid domain"),
        (["account", "add", "x@unknown.example", "--password", "pw"], "no such domain"),
        (["account", "add", "not-an-address", "--password", "pw"], "user@domain"),
        (["alias", "add", "a@unknown.example", "x@example.org"], "no such domain"),
        (["account", "del", "nobody@example.org"], "no such account"),
    ]
    for args, expected in cases:
        done = t.cli(*args, check=False)
        assert done.returncode != 0, args
        assert expected in done.stderr.lower(), (args, done.stderr)
    t.cli("account", "add", "eve@example.org", "--password", "pw")
    dup = t.cli("account", "add", "EVE@example.org", "--password", "pw", check=False)
    assert dup.returncode != 0 and "exists" in dup.stderr.lower()
    busy = t.cli("domain", "del", "example.org", check=False)
    assert busy.returncode != 0 and "account" in busy.stderr.lower()


def test_password_from_stdin_and_wrong_token(fresh_tern):
    t = fresh_tern
    t.cli("domain", "add", "example.org")
    t.cli("account", "add", "frank@example.org", input=PASSWORD + "\n")
    imap = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    assert imap.login("frank@example.org", PASSWORD)[0] == "OK"
    imap.logout()
    done = t.cli("--token", "wrong", "domain", "list", check=False)
    assert done.returncode != 0 and "token" in done.stderr.lower()


def test_queue_list_when_empty(fresh_tern):
    assert "queue is empty" in fresh_tern.cli("queue", "list").stdout


def test_config_example_is_printed():
    import subprocess

    from ternlib import tern_bin

    out = subprocess.run([tern_bin(), "config", "example"], capture_output=True, text=True, check=True)
    assert "[listeners]" in out.stdout and "max_message_size" in out.stdout
