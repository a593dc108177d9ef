"""The outbound relay against real peers: a submitted message goes through unbound (MX lookup)
to a private Postfix, DKIM-signed; 4xx is retried, 5xx and NXDOMAIN bounce with an RFC 3464 DSN
that a mail client reads; the null sender is never bounced; a restart loses nothing and
duplicates at most once; `tern queue` administers it all."""

import email
import re
import smtplib

import pytest

from mta import Unbound, dkim_verify
from ternlib import PASSWORD, Tern, fetch_messages, message, wait_until

LOCAL = "bob@test.example"
DNS_RECORDS = [
    "remote.test. IN MX 10 mx.remote.test.",
    "mx.remote.test. IN A 127.0.0.1",
]


@pytest.fixture(scope="module")
def unbound(tmp_path_factory):
    server = Unbound(tmp_path_factory.mktemp("dns"), DNS_RECORDS, zones=["nowhere.test"])
    yield server
    server.stop()


def relay_tern(path, unbound, postfix, retry_initial=1, retry_max=2, limits=None) -> Tern:
    config = (f'[dns]\nservers = ["{unbound.addr}"]\ntimeout_secs = 2\n'
              f"[relay]\nport = {postfix.port}\nretry_initial_secs = {retry_initial}\n"
              f"retry_max_secs = {retry_max}\n")
    t = Tern(path, extra_config=config, limits=limits).start()
    t.cli("domain", "add", "test.example")
    t.add_account(LOCAL)
    return t


@pytest.fixture
def tern(tmp_path, unbound, postfix):
    t = relay_tern(tmp_path / "node", unbound, postfix)
    yield t
    t.kill()


def submit(t, to: str, subject: str, sender: str = LOCAL, body: str = "Outbound test body.\r\n"):
    """Submits one message as bob (AUTH on the submission port); `sender` is the envelope sender."""
    s = smtplib.SMTP("127.0.0.1", t.ports["submission"], timeout=30)
    s.ehlo("client.test")
    s.login(LOCAL, PASSWORD)
    refused = s.sendmail(sender, [to], message(subject, body=body, sender=LOCAL, to=to))
    s.quit()
    assert refused == {}


def queue(t) -> list[dict]:
    return t.admin_get("/v1/queue")


def queued(t, address: str) -> tuple[dict, dict] | None:
    """(message, recipient) of the queued remote recipient `address`, None if not queued."""
    for q in queue(t):
        for r in q["recipients"]:
            if r["address"].lower() == address.lower():
                return q, r
    return None


def wait_attempts(t, address: str, attempts: int, timeout: float = 30.0) -> tuple[dict, dict]:
    def reached():
        found = queued(t, address)
        return found if found and found[1]["attempts"] >= attempts else None

    try:
        return wait_until(reached, timeout=timeout, what=f"{attempts} attempt(s) for {address}")
    except TimeoutError as e:
        raise TimeoutError(f"{e}\nqueue: {queue(t)}\ntern log:\n{t.log_tail(30)}") from None


def wait_drained(t, timeout: float = 60.0):
    try:
        wait_until(lambda: queue(t) == [], timeout=timeout, what="the queue to drain")
    except TimeoutError as e:
        raise TimeoutError(f"{e}\nqueue: {queue(t)}\ntern log:\n{t.log_tail(30)}") from None
    assert "queue is empty" in t.cli("queue", "list").stdout


def mailbox(t, user: str = LOCAL, folder: str = "INBOX") -> list[email.message.Message]:
    return fetch_messages(t, user, folder)


def wait_dsns(t, count: int, timeout: float = 60.0) -> list[email.message.Message]:
    def arrived():
        reports = [m for m in mailbox(t) if m.get_content_type() == "multipart/report"]
        return reports if len(reports) >= count else None

    try:
        return wait_until(arrived, timeout=timeout, interval=0.2, what=f"{count} DSN(s) in {LOCAL}'s INBOX")
    except TimeoutError as e:
        raise TimeoutError(f"{e}\nqueue: {queue(t)}\ntern log:\n{t.log_tail(30)}") from None


def dsn_fields(dsn: email.message.Message) -> tuple[email.message.Message, list[email.message.Message]]:
    """(per-message fields, [per-recipient fields]) of a multipart/report DSN (RFC 3464)."""
    [status] = [p for p in dsn.walk() if p.get_content_type() == "message/delivery-status"]
    blocks = status.get_payload()
    assert isinstance(blocks, list) and len(blocks) >= 2, status.as_string()
    return blocks[0], blocks[1:]


def assert_failed_dsn(dsn: email.message.Message, recipient: str, original_subject: str) -> email.message.Message:
    """The DSN checks a mail client and a human rely on; returns the recipient's field block."""
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert dsn["Subject"] == "Undelivered Mail Returned to Sender"
    assert dsn["From"] and "MAILER-DAEMON@" in dsn["From"], dsn["From"]
    parts = [p.get_content_type() for p in dsn.walk()]
    assert "text/plain" in parts, parts
    assert "text/rfc822-headers" in parts, parts
    [headers] = [p for p in dsn.walk() if p.get_content_type() == "text/rfc822-headers"]
    assert original_subject in headers.as_string()
    per_message, per_recipient = dsn_fields(dsn)
    assert per_message["Reporting-MTA"], per_message.as_string()
    [block] = [b for b in per_recipient if recipient.lower() in (b["Final-Recipient"] or "").lower()]
    assert block["Action"].strip().lower() == "failed"
    assert re.fullmatch(r"5\.\d{1,3}\.\d{1,3}", block["Status"].strip()), block["Status"]
    return block


def assert_null_return_path(dsn: email.message.Message):
    """A DSN is sent from <> so that it is never bounced itself; the mailbox shows the envelope
    sender in Return-Path (RFC 5321 §4.4), as for every other message delivered here."""
    assert dsn["Return-Path"] == "<>", f"no Return-Path: <> on the DSN; its headers: {dsn.items()}"


def publish(unbound, record: str):
    """Adds a zone-file record, replacing any with the same owner and type (keys are per Tern)."""
    owner, rtype = record.split()[0].lower(), re.search(r"\sIN\s+(\S+)", record).group(1).upper()

    def same(r):
        return r.split()[0].lower() == owner and re.search(r"\sIN\s+(\S+)", r).group(1).upper() == rtype

    unbound.set_records([r for r in unbound.records if not same(r)] + [record])


# --- delivery ------------------------------------------------------------------------------

def test_delivered_once_to_remote_mx_with_valid_dkim(tern, unbound, postfix):
    out = tern.cli("domain", "dkim", "test.example").stdout.strip()
    # One quoted string, or several of at most 255 bytes (zone-file form for a long TXT).
    m = re.fullmatch(r'tern\._domainkey\.test\.example\.\s+IN\s+TXT\s+((?:"[^"]*"\s*)+)', out)
    assert m, out
    value = "".join(re.findall(r'"([^"]*)"', m.group(1)))
    assert re.fullmatch(r"v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]+", value), out
    publish(unbound, out)
    assert unbound.txt("tern._domainkey.test.example")[0].startswith("v=DKIM1; k=rsa; p=")

    to = "dkim@remote.test"
    submit(tern, to, "signed outbound", body="A body that DKIM covers.\r\n")
    [msg] = postfix.wait_for(to, 1, timeout=60)
    wait_drained(tern)
    postfix.wait_idle()
    assert len(postfix.messages(to)) == 1, "delivered exactly once"

    parsed = email.message_from_bytes(msg)
    assert parsed["Subject"] == "signed outbound"
    assert parsed["Return-Path"] == f"<{LOCAL}>"
    assert parsed.get_payload().replace("\r\n", "\n") == "A body that DKIM covers.\n"
    sig = parsed["DKIM-Signature"]
    assert sig, "submitted mail is DKIM-signed"
    tags = dict(t.strip().split("=", 1) for t in re.sub(r"\s+", "", sig).split(";") if "=" in t)
    assert (tags["d"], tags["s"]) == ("test.example", "tern")
    assert tags.get("c", "simple/simple") == "relaxed/relaxed"
    assert dkim_verify(msg, unbound.port), sig
    assert not dkim_verify(msg.replace(b"A body that", b"A body which"), unbound.port)


def test_4xx_is_retried_until_accepted(tern, postfix):
    to = "later@remote.test"
    postfix.reject(to, "450 4.2.0 mailbox busy, try later")
    try:
        submit(tern, to, "retried")
        q, r = wait_attempts(tern, to, 2)
        assert "450" in (r["last_error"] or ""), r
        listing = tern.cli("queue", "list").stdout
        assert to in listing and "450" in listing, listing
        shown = tern.cli("queue", "show", q["id"]).stdout
        assert q["id"] in shown and to in shown and "mailbox busy" in shown, shown
        attempts = int(re.search(r"attempts:\s+(\d+)", shown).group(1))
        assert attempts >= 2, shown
        assert postfix.messages(to) == []
    finally:
        postfix.accept(to)
    postfix.wait_for(to, 1, timeout=60)
    wait_drained(tern)
    postfix.wait_idle()
    assert len(postfix.messages(to)) == 1
    assert mailbox(tern) == [], "a temporary failure that ends in delivery sends no DSN"


@pytest.mark.parametrize("case", ["550", "nxdomain"])
def test_permanent_failure_bounces_a_dsn(tern, postfix, case):
    if case == "550":
        to = "gone@remote.test"
        postfix.reject(to, "550 5.1.1 no such user here")
    else:
        to = "user@nowhere.test"  # NXDOMAIN: no MX, no A
    subject = f"doomed {case}"
    try:
        submit(tern, to, subject)
        [dsn] = wait_dsns(tern, 1)
        wait_drained(tern)
    finally:
        postfix.accept(to) if case == "550" else None
    block = assert_failed_dsn(dsn, to, subject)
    if case == "550":
        assert block["Status"].strip() == "5.1.1", block.as_string()
        assert "550" in (block["Diagnostic-Code"] or ""), block.as_string()
        assert block["Diagnostic-Code"].lower().startswith("smtp;"), block.as_string()
        assert block["Remote-MTA"], block.as_string()
        assert postfix.messages(to) == []
    assert len(mailbox(tern)) == 1, "one DSN, nothing else"
    assert_null_return_path(dsn)


def test_null_sender_is_never_bounced(tern, postfix):
    to = "nobounce@remote.test"
    postfix.reject(to, "550 5.1.1 no such user here")
    try:
        submit(tern, to, "from the null sender", sender="")
        wait_drained(tern)
        # Barrier: a bounce of the first message would have been made before this one's.
        submit(tern, to, "from bob")
        [dsn] = wait_dsns(tern, 1)
        wait_drained(tern)
    finally:
        postfix.accept(to)
    assert len(mailbox(tern)) == 1, "the message from <> was not bounced"
    [headers] = [p for p in dsn.walk() if p.get_content_type() == "text/rfc822-headers"]
    assert "from the null sender" not in headers.as_string()
    assert_failed_dsn(dsn, to, "from bob")


# --- restarts --------------------------------------------------------------------------------

def test_restart_while_queued_delivers_exactly_once(tern, postfix):
    """kill -9 between attempts (no delivery in flight can succeed while the remote says 450):
    the queue survives and the message arrives exactly once."""
    to = "restart@remote.test"
    postfix.reject(to, "450 4.2.0 try later")
    try:
        submit(tern, to, "survives a restart")
        wait_attempts(tern, to, 1)
        tern.kill()
        tern.start()
        assert queued(tern, to), "still queued after kill -9"
    finally:
        postfix.accept(to)
    postfix.wait_for(to, 1, timeout=60)
    wait_drained(tern)
    postfix.wait_idle()
    assert len(postfix.messages(to)) == 1


def test_kill_during_delivery_duplicates_at_most_once(tern, postfix):
    """kill -9 inside the SMTP window: Postfix has the whole message but has not answered the
    final '.' yet. Postfix keeps it; Tern, not knowing, sends it again after the restart. That
    one duplicate is unavoidable in SMTP; a second one, or none at all, would be a bug."""
    to = "window@remote.test"
    postfix.hold(to)
    try:
        submit(tern, to, "in the window")
        postfix.wait_held(to, timeout=60)
        tern.kill()
    finally:
        postfix.release(to)
    postfix.wait_for(to, 1, timeout=30)  # Postfix committed the held copy
    tern.start()
    wait_drained(tern)
    postfix.wait_idle()
    copies = postfix.messages(to)
    assert 1 <= len(copies) <= 2, f"{len(copies)} copies"
    subjects = {email.message_from_bytes(c)["Subject"] for c in copies}
    assert subjects == {"in the window"}


# --- tern queue ------------------------------------------------------------------------------

def test_queue_commands(tmp_path, unbound, postfix):
    # Long retry intervals: nothing is tried again unless a command says so.
    t = relay_tern(tmp_path / "node", unbound, postfix, retry_initial=3600, retry_max=7200)
    a, b = "queue-a@remote.test", "queue-b@remote.test"
    try:
        postfix.reject(a, "450 4.2.0 try a later")
        postfix.reject(b, "450 4.2.0 try b later")
        submit(t, a, "message a")
        submit(t, b, "message b")
        qa, _ = wait_attempts(t, a, 1)
        qb, _ = wait_attempts(t, b, 1)

        shown = t.cli("queue", "show", qa["id"]).stdout
        for text in (qa["id"], LOCAL, a, "try a later"):
            assert text in shown, (text, shown)
        assert re.search(r"attempts:\s+1\b", shown), shown
        assert re.search(r"next try:\s+in ", shown), shown
        listing = t.cli("queue", "list").stdout
        assert qa["id"] in listing and qb["id"] in listing and "2 message(s) queued" in listing, listing

        # retry ID: one more attempt now for that message only.
        t.cli("queue", "retry", qa["id"])
        wait_attempts(t, a, 2)
        assert queued(t, b)[1]["attempts"] == 1

        # delete ID: gone, neither delivered nor bounced.
        t.cli("queue", "delete", qb["id"])
        assert queued(t, b) is None
        gone = t.cli("queue", "show", qb["id"], check=False)
        assert gone.returncode == 1 and gone.stderr.strip(), gone

        # flush: everything now; a is accepted this time.
        postfix.accept(a)
        postfix.accept(b)
        flushed = t.cli("queue", "flush").stdout
        assert "1 message" in flushed, flushed
        postfix.wait_for(a, 1, timeout=30)
        wait_drained(t)
        postfix.wait_idle()
        assert len(postfix.messages(a)) == 1
        assert postfix.messages(b) == []
        assert mailbox(t) == [], "a deleted message is not bounced"

        for command in ("show", "retry", "delete"):
            for bad in ("0" * 32, "not-a-queue-id"):
                done = t.cli("queue", command, bad, check=False)
                assert done.returncode == 1, (command, bad, done)
                assert done.stderr.strip(), (command, bad, done)
    finally:
        postfix.accept(a)
        postfix.accept(b)
        t.kill()


# --- sending limits --------------------------------------------------------------------------

def test_sending_limit_per_hour(tmp_path, unbound, postfix):
    t = relay_tern(tmp_path / "node", unbound, postfix, limits={"max_messages_per_hour": 2})
    try:
        s = smtplib.SMTP("127.0.0.1", t.ports["submission"], timeout=30)
        s.ehlo("client.test")
        s.login(LOCAL, PASSWORD)
        for i in range(2):
            assert s.sendmail(LOCAL, [LOCAL], message(f"within the limit {i}", sender=LOCAL)) == {}
        code, text = s.docmd(f"MAIL FROM:<{LOCAL}>")
        assert (code, text[:5]) == (450, b"4.7.1"), (code, text)
        s.quit()
        assert len(mailbox(t)) == 2
    finally:
        t.kill()
