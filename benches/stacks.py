#!/usr/bin/env python3
"""The two mail stacks of the "Tern vs Postfix+Dovecot" benchmark, each started privately on
127.0.0.1 (free ports in 20000-32000, files under a work directory) with the same users
user1..userN@domain and one password.

- `PostfixDovecot(workdir, domain, users, password)`: Postfix (MX on `smtp_port`, its own
  config, queue and data directories, like tests/mta.py's `Postfix`) delivering over LMTP/TCP
  into Dovecot 2.3 (`dovecot -F -c CONF`, its own base_dir and state_dir; passwd-file users;
  Maildir; IMAP on `imap_port`, POP3 on `pop3_port`, plaintext logins allowed, no TLS).
- `TernNode(workdir, tern_bin, domain, users, password)`: one `tern serve` node (tests/ternlib's
  `Tern`), with the domain and the accounts created through the `tern` CLI.

Both are context managers; `pids()` lists every process of the stack (for memory and CPU
measurement), `durability` says when each one has written a message to stable storage. Both need
root (postfix(1) does, and Dovecot switches to the users' uid). Every wait has a deadline;
`stop()` stops everything, also when the start fails half-way.

    python3 benches/stacks.py smoke --users 20     # both stacks, one message each
"""

import argparse
import ctypes
import ctypes.util
import email
import imaplib
import os
import poplib
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "cluster"))

from mta import (  # noqa: E402
    _MASTER_CF, POSTFIX_BASE_CF, _alive, _allow_traverse, _sbin, _tail, free_port, postfix_command,
    postfix_master_pid, stop_postfix)
from ternlib import UNCAPPED, Tern, wait_until  # noqa: E402
from ternlocal import default_bin  # noqa: E402

# $TERN_BIN, $CARGO_TARGET_DIR/release/tern, CI's cache dir, or cargo's target dir.
DEFAULT_TERN_BIN = default_bin()
DOVECOT_PACKAGES = ["dovecot-core", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd"]

# Tern hashes passwords with the argon2 crate's defaults (Argon2id v19, m=19456 KiB, t=2, p=1).
# Dovecot gets a hash with the same parameters, so that a login costs both servers the same.
ARGON2_T, ARGON2_M_KIB = 2, 19456


def ensure_packages(*packages: str):
    """Installs missing Debian packages with scripts/ensure-apt (which leaves no service on)."""
    subprocess.run([str(REPO / "scripts" / "ensure-apt"), *packages], check=True, timeout=900)


def _starttime(pid: int) -> int | None:
    """The start time of a process (field 22 of /proc/PID/stat), to tell it from a later one with
    the same pid; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _process_tree(roots: list[int]) -> list[int]:
    """`roots` (those alive) and all their descendants, from the ppid fields in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [r for r in roots if r and _alive(r)]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(out)


def _kill_leftovers(recorded: list[tuple[int, int | None]]):
    """SIGKILLs the processes of `recorded` (pid, start time) that still run (same start time)."""
    for pid, start in recorded:
        if start is not None and _starttime(pid) == start and _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _argon2id_hash(password: str) -> str:
    """An Argon2id PHC string with Tern's parameters, made by libsodium (which Dovecot uses to
    verify it); Dovecot's own ARGON2ID (m=65536, t=3) if libsodium cannot be loaded."""
    name = ctypes.util.find_library("sodium") or "libsodium.so.23"
    try:
        sodium = ctypes.CDLL(name)
        if sodium.sodium_init() < 0:
            raise OSError("sodium_init failed")
        out = ctypes.create_string_buffer(128)  # crypto_pwhash_STRBYTES
        pw = password.encode()
        rc = sodium.crypto_pwhash_str_alg(out, pw, ctypes.c_ulonglong(len(pw)), ctypes.c_ulonglong(ARGON2_T),
                                          ctypes.c_size_t(ARGON2_M_KIB * 1024), ctypes.c_int(2))  # ARGON2ID13
        if rc != 0:
            raise OSError("crypto_pwhash_str_alg failed")
        return "{ARGON2ID}" + out.value.decode()
    except (OSError, AttributeError):
        done = subprocess.run(["doveadm", "pw", "-s", "ARGON2ID", "-p", password], capture_output=True,
                              text=True, timeout=60, check=True)
        return done.stdout.strip()


def _protocol_ready(kind: str, port: int, user: str | None = None, password: str | None = None) -> bool:
    """One probe: SMTP EHLO 250, POP3 greeting (+ USER/PASS if `user`), IMAP LOGIN OK."""
    if kind == "smtp":
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
            return s.ehlo("probe.bench.test")[0] == 250
    if kind == "pop3":
        p = poplib.POP3("127.0.0.1", port, timeout=5)
        try:
            if user:
                p.user(user)
                p.pass_(password)
            return True
        finally:
            p.quit()
    if kind == "imap":
        imap = imaplib.IMAP4("127.0.0.1", port, timeout=5)
        try:
            return imap.login(user, password)[0] == "OK"
        finally:
            imap.logout()
    raise ValueError(kind)


# --- Postfix + Dovecot -----------------------------------------------------------------------

_POSTFIX_MASTER_CF = _MASTER_CF + "lmtp      unix  - - n - - lmtp\n"

_POSTFIX_MAIN_CF = POSTFIX_BASE_CF + """\
smtpd_recipient_restrictions = permit
virtual_mailbox_domains = {domain}
virtual_mailbox_maps = texthash:{dir}/etc/virtual_mailboxes
virtual_transport = lmtp:inet:127.0.0.1:{lmtp_port}
lmtp_tls_security_level = none
smtpd_client_connection_count_limit = 1000
smtpd_client_recipient_rate_limit = 0
default_process_limit = 500
"""

_DOVECOT_CONF = """\
# Private Dovecot for the Tern benchmark; nothing is read from /etc/dovecot.
instance_name = {instance}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
default_process_limit = 1000
default_client_limit = 10000
mail_location = maildir:~/Maildir
mail_fsync = optimized
mail_max_userip_connections = 10000
first_valid_uid = 1
namespace inbox {{
  inbox = yes
}}
passdb {{
  driver = passwd-file
  args = {dir}/users
}}
userdb {{
  driver = passwd-file
  args = {dir}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
protocol imap {{
  mail_max_userip_connections = 10000
}}
protocol pop3 {{
  mail_max_userip_connections = 10000
}}
"""


class PostfixDovecot:
    """Postfix (MX, queue) -> LMTP -> Dovecot (Maildir, IMAP, POP3), private, on 127.0.0.1.
    Users user1..user{users}@{domain} share the uid/gid of `nobody`; their Maildirs are
    `workdir/.../mail/<domain>/<user>/Maildir`."""

    def __init__(self, workdir, domain: str = "bench.test", users: int = 1000,
                 password: str = "bench-password", install: bool = True, dovecot_extra: str = "",
                 postfix_extra: str = ""):
        if os.geteuid() != 0:
            raise RuntimeError("PostfixDovecot runs postfix(1) and dovecot, which need root")
        self.domain = domain.lower()
        self.users = users
        self.password = password
        self.install = install
        # Appended to dovecot.conf / main.cf (a later setting overrides an earlier one), e.g.
        # dovecot_extra="auth_cache_size = 10M" for a run with Dovecot's auth cache.
        self.dovecot_extra = dovecot_extra
        self.postfix_extra = postfix_extra
        Path(workdir).mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="postfix-dovecot-", dir=workdir))
        self.pf_dir = self.dir / "postfix"
        self.pf_etc = self.pf_dir / "etc"
        self.dc_dir = self.dir / "dovecot"
        self.dc_conf = self.dc_dir / "dovecot.conf"
        self.dc_log = self.dc_dir / "dovecot.log"
        self.mail_dir = self.dc_dir / "mail"
        self.smtp_port = self.imap_port = self.pop3_port = self.lmtp_port = 0
        self.dovecot: subprocess.Popen | None = None
        self.postfix_running = False
        self.durability = "(not started)"  # from the effective settings, see _read_durability
        self.password_scheme = ""

    def addresses(self) -> list[str]:
        return [f"user{i}@{self.domain}" for i in range(1, self.users + 1)]

    # -- lifecycle

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout: float = 60.0):
        try:
            if self.install:
                ensure_packages("postfix", *DOVECOT_PACKAGES)
            self._setup()
            self._start_dovecot(timeout)
            self._start_postfix(timeout)
            user1 = f"user1@{self.domain}"
            wait_until(lambda: _protocol_ready("smtp", self.smtp_port), timeout=timeout,
                       what=f"postfix SMTP on {self.smtp_port}")
            wait_until(lambda: _protocol_ready("imap", self.imap_port, user1, self.password), timeout=timeout,
                       what=f"dovecot IMAP LOGIN of {user1} on {self.imap_port}")
            wait_until(lambda: _protocol_ready("pop3", self.pop3_port), timeout=timeout,
                       what=f"dovecot POP3 greeting on {self.pop3_port}")
            return self
        except BaseException as e:
            logs = f"\ndovecot log:\n{_tail(self.dc_log)}\npostfix maillog:\n{_tail(self.pf_dir / 'maillog')}"
            self.stop()
            if isinstance(e, (RuntimeError, TimeoutError)):
                raise RuntimeError(f"{e}{logs}") from e
            raise

    def _setup(self):
        nobody = pwd.getpwnam("nobody")
        postfix_user = pwd.getpwnam("postfix")
        for d in (self.pf_etc, self.pf_dir / "queue", self.pf_dir / "data", self.dc_dir / "run",
                  self.dc_dir / "state", self.mail_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chown(self.pf_dir / "data", postfix_user.pw_uid, postfix_user.pw_gid)
        os.chown(self.mail_dir, nobody.pw_uid, nobody.pw_gid)
        _allow_traverse(self.dc_dir)
        _allow_traverse(self.pf_dir)
        hashed = _argon2id_hash(self.password)
        self.password_scheme = hashed.split("$", 4)[1] + " " + hashed.split("$")[3]
        lines, mailboxes = [], []
        for address in self.addresses():
            local = address.split("@")[0]
            home = self.mail_dir / self.domain / local
            lines.append(f"{address}:{hashed}:{nobody.pw_uid}:{nobody.pw_gid}::{home}::")
            mailboxes.append(f"{address} {self.domain}/{local}/")
        users_file = self.dc_dir / "users"
        users_file.write_text("\n".join(lines) + "\n")
        os.chmod(users_file, 0o644)
        (self.pf_etc / "virtual_mailboxes").write_text("\n".join(mailboxes) + "\n")

    def _start_dovecot(self, timeout: float, attempts: int = 5):
        for _ in range(attempts):
            ports = set()
            while len(ports) < 3:
                ports.add(free_port())
            self.imap_port, self.pop3_port, self.lmtp_port = ports
            self.dc_conf.write_text(_DOVECOT_CONF.format(
                instance=f"bench-{self.dir.name}", dir=self.dc_dir, imap_port=self.imap_port,
                pop3_port=self.pop3_port, lmtp_port=self.lmtp_port) + self.dovecot_extra.strip("\n") + "\n")
            log = open(self.dc_dir / "dovecot.stdout", "ab")
            self.dovecot = subprocess.Popen([_sbin("dovecot"), "-F", "-c", str(self.dc_conf)],
                                            stdout=log, stderr=subprocess.STDOUT)
            log.close()
            try:
                wait_until(self._dovecot_listens, timeout=timeout, what="dovecot listeners")
                self._read_durability()
                return
            except (TimeoutError, RuntimeError):
                logs = (self.dc_log, self.dc_dir / "dovecot.stdout")
                text = "\n".join(_tail(f) for f in logs if f.exists())
                self._stop_dovecot()
                if "Address already in use" not in text:
                    raise RuntimeError(f"dovecot did not start:\n{text}") from None
        raise RuntimeError(f"dovecot: no free ports after {attempts} attempts")

    def _read_durability(self):
        """`durability` from the effective settings (doveconf), not from what was written."""
        done = subprocess.run(["doveconf", "-c", str(self.dc_conf), "mail_fsync", "mail_nfs_storage",
                               "mail_nfs_index"], capture_output=True, text=True, timeout=30)
        dovecot = ", ".join(line.strip().replace(" = ", "=") for line in done.stdout.splitlines()
                            if line.strip()) or f"doveconf failed: {done.stderr.strip()}"
        self.durability = (f"postfix: queue file fsync before 250 (default); dovecot: {dovecot} "
                           f"(message fsync before LMTP 250)")

    def _dovecot_listens(self) -> bool:
        if self.dovecot.poll() is not None:
            raise RuntimeError(f"dovecot exited with {self.dovecot.returncode}")
        for port in (self.imap_port, self.pop3_port, self.lmtp_port):
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
        return True

    def _postfix(self, *args, timeout=60) -> subprocess.CompletedProcess:
        return postfix_command(self.pf_etc, *args, timeout=timeout)

    def _start_postfix(self, timeout: float, attempts: int = 5):
        log_path = self.pf_dir / "maillog"
        for _ in range(attempts):
            self.smtp_port = free_port()
            while self.smtp_port in (self.imap_port, self.pop3_port, self.lmtp_port):
                self.smtp_port = free_port()
            main_cf = _POSTFIX_MAIN_CF.format(dir=self.pf_dir, hostname=f"mx.{self.domain}",
                                              domain=self.domain, lmtp_port=self.lmtp_port)
            (self.pf_etc / "main.cf").write_text(main_cf + self.postfix_extra.strip("\n") + "\n")
            master_cf = _POSTFIX_MASTER_CF.format(listen=f"127.0.0.1:{self.smtp_port}")
            (self.pf_etc / "master.cf").write_text(master_cf)
            self.postfix_running = True  # from here on, stop() runs `postfix stop`
            done = self._postfix("start")
            if done.returncode != 0:
                self._stop_postfix()
                if "Address already in use" in _tail(log_path, 5):
                    continue
                raise RuntimeError(f"postfix start failed ({done.returncode}): {done.stderr}")
            try:
                wait_until(lambda: _protocol_ready("smtp", self.smtp_port), timeout=timeout,
                           what=f"postfix EHLO on port {self.smtp_port}")
                return
            except TimeoutError:
                in_use = "Address already in use" in _tail(log_path)
                self._stop_postfix()
                if not in_use:
                    raise
        raise RuntimeError(f"postfix: no free port after {attempts} attempts")

    def stop(self, timeout: float = 30.0):
        """Stops Postfix and Dovecot (then SIGKILLs any of their processes still there)."""
        recorded = [(p, _starttime(p)) for p in self.pids()]
        try:
            self._stop_postfix(timeout)
        finally:
            self._stop_dovecot(timeout)
            _kill_leftovers(recorded)

    def _stop_postfix(self, timeout: float = 30.0):
        if self.postfix_running:
            self.postfix_running = False
            stop_postfix(self.pf_etc, self.pf_dir, timeout)

    def _stop_dovecot(self, timeout: float = 30.0):
        proc, self.dovecot = self.dovecot, None
        if proc is None or proc.poll() is not None:
            return
        tree = [(p, _starttime(p)) for p in _process_tree([proc.pid])]
        proc.terminate()  # what `doveadm stop` sends; the master stops its children
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        try:
            wait_until(lambda: not any(_starttime(p) == s for p, s in tree if s is not None), timeout=10,
                       what="dovecot processes to exit")
        except TimeoutError:
            _kill_leftovers(tree)

    # -- measurement

    def roots(self) -> list[int]:
        """The Postfix master and the Dovecot master, those that run."""
        roots = [postfix_master_pid(self.pf_dir) if self.postfix_running else None,
                 self.dovecot.pid if self.dovecot and self.dovecot.poll() is None else None]
        return [r for r in roots if r]

    def pids(self) -> list[int]:
        """The Postfix master and Dovecot master with all their descendants."""
        return _process_tree(self.roots())

    def maildir(self, address: str) -> Path:
        return self.mail_dir / self.domain / address.split("@")[0] / "Maildir"

    def delivered(self) -> int:
        """Messages in all the users' Maildirs (new/ and cur/ of every folder)."""
        base = self.mail_dir / self.domain
        return sum(1 for sub in ("new", "cur") for d in base.glob(f"*/Maildir/**/{sub}") if d.is_dir()
                   for f in os.scandir(d) if f.is_file()) if base.is_dir() else 0

    def queue_empty(self) -> bool:
        """Postfix has nothing queued: everything it accepted was delivered (or bounced)."""
        queue = self.pf_dir / "queue"
        return not any(f.is_file() for sub in ("maildrop", "incoming", "active", "deferred", "hold")
                       for f in (queue / sub).rglob("*"))

    def wait_idle(self, timeout: float = 120.0):
        """Waits until Postfix's queue is empty, i.e. Dovecot has taken every accepted message."""
        try:
            wait_until(self.queue_empty, timeout=timeout, what="postfix queue to empty")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\npostfix maillog:\n{_tail(self.pf_dir / 'maillog', 30)}") from None


# --- Tern ------------------------------------------------------------------------------------

class TernNode:
    """One `tern serve` node (its data dir under workdir) with `domain` and the accounts
    user1..user{users}@domain, all with `password`."""

    def __init__(self, workdir, tern_bin: str | None = None, domain: str = "bench.test", users: int = 1000,
                 password: str = "bench-password", partitions: int = 64, limits: dict | None = None,
                 workers: int = 8):
        self.tern_bin = tern_bin or os.environ.get("TERN_BIN") or DEFAULT_TERN_BIN
        if not Path(self.tern_bin).exists():
            raise RuntimeError(f"tern binary not found at {self.tern_bin}")
        os.environ["TERN_BIN"] = self.tern_bin  # ternlib.tern_bin() reads it
        Path(workdir).mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="tern-", dir=workdir))
        self.domain = domain.lower()
        self.users = users
        self.password = password
        self.workers = workers
        # As generous as the Postfix+Dovecot side: the benchmark's many loopback clients.
        self.limits = {"max_connections_per_ip": 100000, "max_connections": 100000, **UNCAPPED,
                       **(limits or {})}
        self.tern = Tern(self.dir / "data", partitions=partitions, limits=self.limits)
        self.durability = "every 250 fsynced (RocksDB WAL sync)"

    @property
    def smtp_port(self) -> int:
        return self.tern.ports["smtp"]

    @property
    def imap_port(self) -> int:
        return self.tern.ports["imap"]

    @property
    def pop3_port(self) -> int:
        return self.tern.ports["pop3"]

    def addresses(self) -> list[str]:
        return [f"user{i}@{self.domain}" for i in range(1, self.users + 1)]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout: float = 60.0):
        try:
            self.tern.start(timeout=timeout)
            self.tern.cli("domain", "add", self.domain)
            with ThreadPoolExecutor(self.workers) as pool:
                for _ in pool.map(lambda a: self.tern.add_account(a, self.password), self.addresses()):
                    pass
            user1 = f"user1@{self.domain}"
            wait_until(lambda: _protocol_ready("smtp", self.smtp_port), timeout=timeout, what="tern SMTP")
            wait_until(lambda: _protocol_ready("imap", self.imap_port, user1, self.password), timeout=timeout,
                       what=f"tern IMAP LOGIN of {user1}")
            wait_until(lambda: _protocol_ready("pop3", self.pop3_port), timeout=timeout, what="tern POP3")
            return self
        except BaseException as e:
            log = self.tern.log_tail()
            self.stop()
            if isinstance(e, (RuntimeError, TimeoutError, AssertionError)):
                raise RuntimeError(f"{e}\ntern log:\n{log}") from e
            raise

    def stop(self, timeout: float = 30.0):
        try:
            self.tern.stop(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass  # Tern.stop has killed it

    def pids(self) -> list[int]:
        proc = self.tern.proc
        return _process_tree([proc.pid]) if proc and proc.poll() is None else []


# --- smoke test ------------------------------------------------------------------------------

def _send(port: int, rcpt: str) -> str:
    mid = f"<{uuid.uuid4()}@smoke.bench>"
    msg = (f"From: smoke@sender.example\r\nTo: {rcpt}\r\nSubject: smoke\r\nMessage-ID: {mid}\r\n"
           f"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\nHello from the smoke test.\r\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("smoke@sender.example", [rcpt], msg)
    return mid


def _imap_has(port: int, user: str, password: str, mid: str) -> bool:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "ALL")
        for num in data[0].split():
            _, parts = imap.fetch(num, "(BODY.PEEK[HEADER])")
            if email.message_from_bytes(parts[0][1]).get("Message-ID") == mid:
                return True
        return False
    finally:
        imap.logout()


def _pop3_has(port: int, user: str, password: str, mid: str) -> bool:
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        p.user(user)
        p.pass_(password)
        count, _ = p.stat()
        for i in range(1, count + 1):
            _, lines, _ = p.top(i, 0)
            if email.message_from_bytes(b"\r\n".join(lines)).get("Message-ID") == mid:
                return True
        return False
    finally:
        p.quit()


def smoke(stack, name: str) -> str:
    user = f"user1@{stack.domain}"
    t0 = time.monotonic()
    mid = _send(stack.smtp_port, user)
    wait_until(lambda: _imap_has(stack.imap_port, user, stack.password, mid), timeout=30,
               what=f"{name}: the message by IMAP")
    wait_until(lambda: _pop3_has(stack.pop3_port, user, stack.password, mid), timeout=30,
               what=f"{name}: the message by POP3")
    return (f"{name}: smtp={stack.smtp_port} imap={stack.imap_port} pop3={stack.pop3_port} "
            f"pids={len(stack.pids())} delivered+visible in {time.monotonic() - t0:.2f}s; "
            f"durability: {stack.durability}: OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sm = sub.add_parser("smoke", help="start both stacks, deliver one message on each, stop")
    sm.add_argument("--users", type=int, default=20)
    sm.add_argument("--domain", default="bench.test")
    sm.add_argument("--password", default="bench-password")
    sm.add_argument("--tern-bin", default=os.environ.get("TERN_BIN", DEFAULT_TERN_BIN))
    sm.add_argument("--workdir", default=None, help="default: a temporary directory, removed afterwards")
    a = ap.parse_args()

    workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="stacks-smoke-"))
    try:
        t0 = time.monotonic()
        with PostfixDovecot(workdir, a.domain, a.users, a.password) as pd, \
                TernNode(workdir, a.tern_bin, a.domain, a.users, a.password) as tn:
            print(f"both stacks up in {time.monotonic() - t0:.1f}s ({a.users} users each; dovecot password "
                  f"hash {pd.password_scheme})", flush=True)
            print(smoke(pd, "postfix+dovecot"), flush=True)
            print(smoke(tn, "tern"), flush=True)
        print("OK")
    finally:
        if not a.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
