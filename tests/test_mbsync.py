"""mbsync (isync) syncs a whole account to a local Maildir and back: flags and a moved message
round-trip in both directions."""

import imaplib
import smtplib
import subprocess
from pathlib import Path

from ternlib import PASSWORD, message


def mbsync(config: Path):
    done = subprocess.run(["mbsync", "-c", str(config), "-a"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def maildir_files(root: Path, folder: str):
    d = root / folder
    return sorted(p for sub in ("cur", "new") for p in (d / sub).glob("*") if p.is_file())


def maildir_flags(path: Path) -> str:
    return path.name.split(":2,", 1)[1] if ":2," in path.name else ""


def test_mbsync_round_trip(tern, tmp_path):
    s = smtplib.SMTP("127.0.0.1", tern.ports["smtp"], timeout=30)
    for i in range(3):
        s.sendmail("a@remote.example", ["bob@test.example"], message(f"sync {i}"))
    s.quit()

    local = tmp_path / "Mail"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(f"""
IMAPAccount tern
Host 127.0.0.1
Port {tern.ports['imap']}
User bob@test.example
Pass "{PASSWORD}"
SSLType STARTTLS
CertificateFile {tern.data_dir / 'tls-cert.pem'}

IMAPStore tern-remote
Account tern

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel tern
Far :tern-remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    mbsync(config)
    inbox = maildir_files(local, "INBOX")
    assert len(inbox) == 3
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert (local / name / "cur").is_dir(), name

    # Local changes: flag one message seen, move another into Archive.
    first, second = inbox[0], inbox[1]
    first.rename(first.parent.parent / "cur" / (first.name.split(":2,")[0] + ":2,S"))
    moved_subject = [line for line in second.read_bytes().splitlines() if line.startswith(b"Subject:")][0]
    (local / "Archive" / "cur").mkdir(parents=True, exist_ok=True)
    second.rename(local / "Archive" / "cur" / (second.name.split(",U=")[0] + ":2,"))
    mbsync(config)

    imap = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    imap.login("bob@test.example", PASSWORD)
    assert imap.select("INBOX")[1][0] == b"2"
    assert imap.search(None, "SEEN")[1][0].split() == [b"1"]
    assert imap.select("Archive")[1][0] == b"1"
    subject = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1].strip()
    assert subject == moved_subject

    # Server-side changes flow back: flag in INBOX, move one to Trash.
    imap.select("INBOX")
    imap.store("1", "+FLAGS", "\\Flagged")
    unseen_uid = imap.uid("SEARCH", None, "UNSEEN")[1][0].decode()
    assert imap.uid("MOVE", unseen_uid, "Trash")[0] == "OK"
    imap.logout()
    mbsync(config)
    inbox = maildir_files(local, "INBOX")
    assert len(inbox) == 1 and "F" in maildir_flags(inbox[0]) and "S" in maildir_flags(inbox[0])
    assert len(maildir_files(local, "Trash")) == 1
    assert len(maildir_files(local, "Archive")) == 1
