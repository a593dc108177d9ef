"""Inbound mail authentication against a real DNS server: SPF, DKIM (signed by dkimpy) and DMARC
verdicts in Authentication-Results, DMARC p=reject and p=quarantine, DNSBL refusal at connect,
and auth=pass on submission."""

import email
import re
import smtplib
import socket
import subprocess

import pytest

from mta import Unbound, dkim_keypair, dkim_sign
from ternlib import PASSWORD, Tern, fetch_messages, message, wait_until

HOSTNAME = "mx.test.example"  # ternlib's [server] hostname = the authserv-id
BL_REASON = "Listed by the Tern test list: see https://bl.test/lookup?ip=127.0.0.1"


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory):
    return dkim_keypair(tmp_path_factory.mktemp("dkim"))


@pytest.fixture(scope="module")
def unbound(tmp_path_factory, dkim_key):
    records = [
        # SPF passes for 127.0.0.1; no DMARC record.
        'spf-pass.test. IN TXT "v=spf1 ip4:127.0.0.1 -all"',
        # Forged: SPF excludes 127.0.0.1, DMARC says reject / quarantine.
        'forged-reject.test. IN TXT "v=spf1 ip4:192.0.2.1 -all"',
        '_dmarc.forged-reject.test. IN TXT "v=DMARC1; p=reject"',
        'forged-quarantine.test. IN TXT "v=spf1 ip4:192.0.2.1 -all"',
        '_dmarc.forged-quarantine.test. IN TXT "v=DMARC1; p=quarantine"',
        # DKIM-signed mail: SPF neutral for 127.0.0.1, so DMARC can pass only through DKIM.
        'signer.test. IN TXT "v=spf1 ip4:192.0.2.1 ?all"',
        f'sel._domainkey.signer.test. IN TXT "{dkim_key[1]}"',
        '_dmarc.signer.test. IN TXT "v=DMARC1; p=none"',
        # The DNS blocklist: 127.0.0.1 is listed (RFC 5782 reversed-octet query).
        "1.0.0.127.bl.test. IN A 127.0.0.2",
        f'1.0.0.127.bl.test. IN TXT "{BL_REASON}"',
    ]
    server = Unbound(tmp_path_factory.mktemp("dns"), records)
    yield server
    server.stop()


def dns_config(unbound, extra: str = "") -> str:
    return f'[dns]\nservers = ["{unbound.addr}"]\ntimeout_secs = 2\n' + extra


def start_tern(path, config: str) -> Tern:
    t = Tern(path, extra_config=config).start()
    t.cli("domain", "add", "test.example")
    t.add_account("bob@test.example")
    t.add_account("carol@test.example")
    return t


@pytest.fixture(scope="module")
def tern(tmp_path_factory, unbound):
    t = start_tern(tmp_path_factory.mktemp("inbound") / "node", dns_config(unbound))
    yield t
    t.kill()


def folder(t, name: str = "INBOX", user: str = "bob@test.example") -> list[email.message.Message]:
    return fetch_messages(t, user, name)


def by_subject(t, subject: str, name: str = "INBOX", user: str = "bob@test.example") -> list[email.message.Message]:
    return [m for m in folder(t, name, user) if m["Subject"] == subject]


def auth_results(msg: email.message.Message) -> str:
    """The Authentication-Results header this server added (authserv-id = its hostname)."""
    ours = [h for h in msg.get_all("Authentication-Results", []) if h.strip().lower().startswith(HOSTNAME)]
    assert len(ours) == 1, msg.get_all("Authentication-Results")
    return re.sub(r"\s+", " ", ours[0])


def result(ar: str, method: str) -> str | None:
    m = re.search(rf"\b{method}=(\w+)", ar)
    return m.group(1) if m else None


def swaks(t, mail_from: str, subject: str, to: str = "bob@test.example", header_from: str | None = None):
    return subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(t.ports["smtp"]), "--ehlo", "client.test",
         "--from", mail_from, "--to", to, "--header", f"Subject: {subject}",
         "--header", f"From: <{header_from or mail_from}>", "--body", "inbound auth test", "--timeout", "30"],
        capture_output=True, text=True, timeout=60)


def send(t, mail_from: str, data: bytes, to: str = "bob@test.example") -> tuple[int, bytes]:
    """One transaction on the MX port; the reply to the end of DATA."""
    s = smtplib.SMTP("127.0.0.1", t.ports["smtp"], timeout=30)
    try:
        s.ehlo("client.test")
        assert s.mail(mail_from)[0] == 250
        assert s.rcpt(to)[0] == 250
        return s.data(data)
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error
    finally:
        s.close()


def signed_message(dkim_key, subject: str) -> bytes:
    raw = message(subject, body="This body is covered by the signature.\r\n", sender="alice@signer.test")
    return dkim_sign(raw, "signer.test", dkim_key[0], selector="sel")


def test_spf_pass(tern):
    done = swaks(tern, "alice@spf-pass.test", "spf pass")
    assert done.returncode == 0, done.stdout + done.stderr
    [msg] = wait_until(lambda: by_subject(tern, "spf pass"), what="the message in INBOX")
    ar = auth_results(msg)
    assert result(ar, "spf") == "pass", ar
    assert "smtp.mailfrom=alice@spf-pass.test" in ar or "smtp.mailfrom=spf-pass.test" in ar, ar


def test_forged_with_dmarc_reject_is_refused(tern):
    done = swaks(tern, "ceo@forged-reject.test", "forged reject")
    assert done.returncode != 0, done.stdout
    assert re.search(r"<\*\* 550[ -]5\.7\.1", done.stdout), done.stdout
    # Refused at end of DATA: nothing stored anywhere. (The next message is a barrier.)
    assert swaks(tern, "alice@spf-pass.test", "after forged reject").returncode == 0
    wait_until(lambda: by_subject(tern, "after forged reject"), what="the barrier message")
    assert by_subject(tern, "forged reject") == []
    assert by_subject(tern, "forged reject", "Junk") == []


def test_forged_with_dmarc_quarantine_goes_to_junk(tern):
    done = swaks(tern, "ceo@forged-quarantine.test", "forged quarantine")
    assert done.returncode == 0, done.stdout + done.stderr
    [msg] = wait_until(lambda: by_subject(tern, "forged quarantine", "Junk"), what="the message in Junk")
    assert by_subject(tern, "forged quarantine") == [], "not in INBOX"
    ar = auth_results(msg)
    assert result(ar, "spf") == "fail", ar
    assert result(ar, "dmarc") == "fail", ar


def test_dkim_signed_passes_and_tampered_fails(tern, dkim_key):
    code, reply = send(tern, "alice@signer.test", signed_message(dkim_key, "dkim good"))
    assert code == 250, reply
    [msg] = wait_until(lambda: by_subject(tern, "dkim good"), what="the signed message")
    ar = auth_results(msg)
    assert result(ar, "dkim") == "pass", ar
    assert "header.d=signer.test" in ar, ar
    assert result(ar, "dmarc") == "pass", ar  # aligned through DKIM; SPF is only neutral
    assert result(ar, "spf") == "neutral", ar

    # A signed header changed after signing: the signature itself does not verify.
    forged = signed_message(dkim_key, "dkim header tampered").replace(b"10:00:00 +0000", b"11:00:00 +0000")
    code, reply = send(tern, "alice@signer.test", forged)
    assert code == 250, reply  # p=none: delivered, with the verdict
    [msg] = wait_until(lambda: by_subject(tern, "dkim header tampered"), what="the message")
    ar = auth_results(msg)
    assert result(ar, "dkim") == "fail", ar
    assert result(ar, "dmarc") == "fail", ar

    # The body changed after signing: the body hash does not match. RFC 8601 allows "fail";
    # OpenDKIM and Gmail (and mail-auth) say "neutral (body hash did not verify)". Either way
    # it is no pass, and DMARC fails.
    tampered = signed_message(dkim_key, "dkim body tampered").replace(b"is covered by", b"was changed after")
    code, reply = send(tern, "alice@signer.test", tampered)
    assert code == 250, reply
    [msg] = wait_until(lambda: by_subject(tern, "dkim body tampered"), what="the tampered message")
    ar = auth_results(msg)
    assert result(ar, "dkim") in ("fail", "neutral"), ar
    assert "body hash" in ar.lower() or result(ar, "dkim") == "fail", ar
    assert result(ar, "dmarc") == "fail", ar


def read_greeting(port: int) -> bytes:
    """Everything the server says to a fresh connection before it closes it (or 5 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
                if data.startswith(b"220") and data.endswith(b"\r\n"):
                    break
        except TimeoutError:
            pass
        return data


def test_dnsbl_listed_client_is_refused_at_connect(tmp_path, unbound, tern):
    listed = start_tern(tmp_path / "bl", dns_config(unbound, '[filter]\ndnsbl = ["bl.test"]\n'))
    try:
        greeting = read_greeting(listed.ports["smtp"]).decode(errors="replace")
        assert greeting.startswith("554 5.7.1 "), greeting
        assert "[127.0.0.1]" in greeting and "bl.test" in greeting, greeting
        assert BL_REASON in greeting, greeting
    finally:
        listed.kill()
    # The same client at a server that does not use the list is welcome.
    assert read_greeting(tern.ports["smtp"]).startswith(b"220 ")


def test_submission_gets_auth_pass(tern):
    s = smtplib.SMTP("127.0.0.1", tern.ports["submission"], timeout=30)
    s.ehlo("client.test")
    s.login("bob@test.example", PASSWORD)
    s.sendmail("bob@test.example", ["carol@test.example"],
               message("submitted to carol", sender="bob@test.example", to="carol@test.example"))
    s.quit()
    [msg] = wait_until(lambda: by_subject(tern, "submitted to carol", user="carol@test.example"),
                       what="the message in carol's INBOX")
    ar = auth_results(msg)
    assert result(ar, "auth") == "pass", ar
    assert "smtp.auth=bob@test.example" in ar, ar


def test_domain_dns_records_load_into_a_real_dns_server(tern, unbound):
    """`tern domain dns` prints zone-file lines: publish them in unbound and read them back."""
    tern.cli("domain", "dkim", "test.example")
    lines = tern.cli("domain", "dns", "test.example").stdout.splitlines()
    records = [line for line in lines if line.strip() and not line.lstrip().startswith(";")]
    assert any(re.match(r"test\.example\.\s+IN\s+MX\s+\d+\s+\S+", r) for r in records), lines
    assert any("_mta-sts" in line for line in lines) and any("_smtp._tls" in line for line in lines), lines
    unbound.add_records(records)
    assert "v=spf1 mx -all" in unbound.txt("test.example")
    [dkim_txt] = unbound.txt("tern._domainkey.test.example")
    assert re.fullmatch(r"v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]+", dkim_txt), dkim_txt
    [dmarc] = unbound.txt("_dmarc.test.example")
    assert dmarc == "v=DMARC1; p=quarantine; rua=mailto:postmaster@test.example"
    mx = [rr.to_text() for rrset in unbound.query("test.example", "MX").answer for rr in rrset]
    assert len(mx) == 1 and mx[0].endswith(f"{HOSTNAME}."), mx
