"""`tern backup`: an online backup of a node that keeps taking mail, checked with `verify` and
restored into a new data dir; a node started from it has every message acknowledged before the
backup began, byte for byte, once. A damaged or unfinished backup is refused by `verify` and
`restore`, and nothing is written."""

import imaplib
import random
import shutil
import smtplib
import subprocess
import threading

from ternlib import PASSWORD, Tern, message, tern_bin, wait_until

USERS = ["bob@test.example", "carol@test.example", "dave@test.example"]


def fetch_all(t, user) -> dict[str, list[bytes]]:
    """Message-ID → the full messages carrying it, read over IMAP."""
    imap = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    imap.login(user, PASSWORD)
    imap.select("INBOX", readonly=True)
    _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
    imap.logout()
    found: dict[str, list[bytes]] = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        body = item[1]
        header = body.split(b"\r\n\r\n", 1)[0]
        mid = next(line.split(b":", 1)[1].strip().decode()
                   for line in header.split(b"\r\n") if line.lower().startswith(b"message-id:"))
        found.setdefault(mid, []).append(body)
    return found


def run_tern(*args) -> subprocess.CompletedProcess:
    return subprocess.run([tern_bin(), *args], capture_output=True, text=True, timeout=300)


def setup(t):
    t.cli("domain", "add", "test.example")
    for u in USERS:
        t.add_account(u)


def test_a_backup_taken_under_load_restores_every_acknowledged_message(tmp_path):
    t = Tern(tmp_path / "node").start()
    restored = Tern(tmp_path / "restored")
    backup = tmp_path / "backup"
    try:
        setup(t)
        acked: list[tuple[str, str]] = []
        lock = threading.Lock()
        stop = threading.Event()
        failures = []

        def load():
            try:
                s = smtplib.SMTP("127.0.0.1", t.ports["smtp"], timeout=30)
                i = 0
                while not stop.is_set():
                    user = USERS[i % len(USERS)]
                    mid = f"<backup-{i}@tests.tern>"
                    body = "x" * random.randint(100, 20_000) + "\r\n"
                    s.sendmail("a@remote.example", [user],
                               message(f"load {i}", body=body, to=user, message_id=mid))
                    with lock:
                        acked.append((user, mid))
                    i += 1
                s.quit()
            except Exception as e:     # reported by the main thread
                failures.append(e)

        sender = threading.Thread(target=load)
        sender.start()
        try:
            wait_until(lambda: len(acked) >= 60, timeout=60, what="60 messages accepted")
            with lock:
                before = list(acked)
            created = t.cli("backup", "create", str(backup))
            with lock:
                during = len(acked) - len(before)
        finally:
            stop.set()
            sender.join(timeout=60)
        assert not failures, failures
        print(f"{len(before)} acknowledged before the backup, {during} during it")
        assert "backup of node 1" in created.stdout, created.stdout + created.stderr

        originals = {u: fetch_all(t, u) for u in USERS}
        verified = run_tern("backup", "verify", str(backup))
        assert verified.returncode == 0, verified.stderr
        assert "backup OK" in verified.stdout

        done = run_tern("backup", "restore", str(backup), "--data", str(restored.data_dir))
        assert done.returncode == 0, done.stderr
        restored.start()
        copies = {u: fetch_all(restored, u) for u in USERS}     # logins work: directory restored
        for user, mid in before:
            assert copies[user].get(mid) == originals[user][mid], f"{mid} for {user}"
        for user in USERS:
            twice = [m for m, bodies in copies[user].items() if len(bodies) > 1]
            assert not twice, f"{user}: duplicated {twice}"
        # The restored node takes new mail.
        s = smtplib.SMTP("127.0.0.1", restored.ports["smtp"], timeout=30)
        s.sendmail("a@remote.example", [USERS[0]],
                   message("after restore", to=USERS[0], message_id="<after@tests.tern>"))
        s.quit()
        assert "<after@tests.tern>" in fetch_all(restored, USERS[0])
    finally:
        t.kill()
        restored.kill()


def test_a_damaged_or_unfinished_backup_is_refused(tmp_path):
    t = Tern(tmp_path / "node").start()
    backup = tmp_path / "backup"
    try:
        setup(t)
        s = smtplib.SMTP("127.0.0.1", t.ports["smtp"], timeout=30)
        for i in range(10):
            s.sendmail("a@remote.example", [USERS[0]],
                       message(f"m {i}", body="y" * 5_000 + "\r\n", to=USERS[0]))
        s.quit()
        t.cli("backup", "create", str(backup))
    finally:
        t.kill()
    assert run_tern("backup", "verify", str(backup)).returncode == 0

    # A flipped byte in the middle of the largest image.
    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged)
    largest = max(damaged.glob("g*.img"), key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    data[len(data) // 2] ^= 0x01
    largest.write_bytes(bytes(data))
    verified = run_tern("backup", "verify", str(damaged))
    assert verified.returncode != 0
    assert largest.name in verified.stderr and "checksum" in verified.stderr, verified.stderr
    target = tmp_path / "target"
    restored = run_tern("backup", "restore", str(damaged), "--data", str(target))
    assert restored.returncode != 0
    assert not (target / "db").exists(), "a corrupt backup was partly restored"

    # A backup that never finished has no manifest.
    unfinished = tmp_path / "unfinished"
    shutil.copytree(backup, unfinished)
    (unfinished / "manifest.json").unlink()
    for command in (["verify", str(unfinished)],
                    ["restore", str(unfinished), "--data", str(tmp_path / "t2")]):
        done = run_tern("backup", *command)
        assert done.returncode != 0 and "incomplete backup" in done.stderr, done.stderr

    # A missing image file.
    missing = tmp_path / "missing"
    shutil.copytree(backup, missing)
    (missing / "g0.img").unlink()
    done = run_tern("backup", "verify", str(missing))
    assert done.returncode != 0 and "g0.img" in done.stderr, done.stderr
