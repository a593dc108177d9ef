"""Start real `tern` processes for end-to-end tests and drive them.

Every server binds 127.0.0.1 on free ports, keeps its data in a temporary directory, and is
killed when the test ends. Waiting is always on a condition with a deadline, never a bare sleep.
"""

import contextlib
import email
import imaplib
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

PASSWORD = "correct horse battery"


def tern_bin() -> str:
    path = os.environ.get("TERN_BIN")
    if not path:
        target = os.environ.get("CARGO_TARGET_DIR", str(Path(__file__).parent.parent / "target"))
        path = str(Path(target) / "release" / "tern")
    if not Path(path).exists():
        raise RuntimeError(f"tern binary not found at {path}: run `cargo build --release` first")
    return path


# Server ports come from below the kernel's ephemeral range (32768+ on Linux), so the client
# side of some other connection cannot take one between our pick and the server's bind.
_PORT_RANGE = (20000, 32000)


def free_port() -> int:
    for _ in range(1000):
        port = random.randint(*_PORT_RANGE)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


def wait_until(condition, timeout=30.0, interval=0.05, what="condition"):
    """Polls `condition` until it returns a truthy value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - the condition may fail while it is not ready
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last error: {last_error!r}")


def fetch_messages(t, user: str, folder: str = "INBOX") -> list:
    """Every message in `user`'s `folder` of server `t`, parsed, in UID order (plain IMAP LOGIN,
    which the test config allows on loopback); [] when the folder does not exist."""
    imap = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    try:
        imap.login(user, PASSWORD)
        if imap.select(folder, readonly=True)[0] != "OK":
            return []
        _, data = imap.uid("SEARCH", None, "ALL")
        out = []
        for uid in data[0].split():
            _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            out.append(email.message_from_bytes(parts[0][1]))
        return out
    finally:
        imap.logout()


# `[limits]` entries that lift every protocol's own connection caps (benchmarks with many
# clients on one loopback address).
UNCAPPED = {p: "{ max_connections_per_ip = 100000, max_connections = 100000 }"
            for p in ("smtp", "submission", "imap", "pop3")}

PROTOCOLS = ["smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "admin"]


class Tern:
    """One `tern serve` process with its own data dir and ports."""

    def __init__(self, data_dir: Path, partitions: int = 8, limits: dict | None = None,
                 plaintext_auth: bool = True, extra_config: str = ""):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.ports = {p: free_port() for p in PROTOCOLS}
        self.config_path = self.data_dir.parent / f"{self.data_dir.name}.toml"
        self.limits = limits or {}
        self.partitions = partitions
        self.plaintext_auth = plaintext_auth
        # TOML appended to the generated config: sections it does not write itself (`[dns]`,
        # `[relay]`, `[filter]`, ...; [limits] comes from `limits`).
        self.extra_config = extra_config
        self.proc = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.write_config()

    def write_config(self):
        lines = [
            "[server]",
            'hostname = "mx.test.example"',
            f'data_dir = "{self.data_dir}"',
            f"allow_plaintext_auth_on_loopback = {str(self.plaintext_auth).lower()}",
            "[listeners]",
        ]
        lines += [f'{p} = "127.0.0.1:{port}"' for p, port in self.ports.items()]
        lines += ["[limits]"] + [f"{k} = {v}" for k, v in self.limits.items()]
        lines += ["[cluster]", f"partitions = {self.partitions}"]
        if "[dns]" not in self.extra_config:
            # No test asks the machine's resolver: nothing answers on the discard port, so every
            # lookup ends in a timeout (temperror) and remote mail stays queued.
            lines += ["[dns]", 'servers = ["127.0.0.1:9"]', "timeout_secs = 1"]
            if "[filter]" not in self.extra_config:
                # The inbound checks would only wait for that timeout on every message; they
                # are tested against a real DNS server in test_inbound_auth.
                lines += ["[filter]", "spf = false", "dkim = false", "dmarc = false"]
        if self.extra_config:
            lines.append(self.extra_config.strip("\n"))
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['admin']}"

    def start(self, timeout=60.0, attempts=5):
        """Starts the server and waits until it is ready. If a port was taken meanwhile, picks
        new ports and tries again; any other failure is reported at once with the log."""
        for attempt in range(attempts):
            self._spawn()
            outcome = self._wait_ready(timeout)
            if outcome == "ready":
                return self
            if outcome == "port in use" and attempt + 1 < attempts:
                self.ports = {p: free_port() for p in PROTOCOLS}
                self.write_config()
                continue
            self.kill()
            raise RuntimeError(f"tern did not start ({outcome}):\n{self.log_tail()}")
        raise RuntimeError("unreachable")

    def _spawn(self):
        log = open(self.log_path, "ab")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info,openraft=warn"))
        self.proc = subprocess.Popen(
            [tern_bin(), "serve", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()

    def _wait_ready(self, timeout) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                in_use = "Address already in use" in self.log_tail(20)
                return "port in use" if in_use else f"exited with {self.proc.returncode}"
            try:
                with urllib.request.urlopen(self.admin_url + "/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return "ready"
            except OSError:
                pass
            time.sleep(0.05)
        return f"not ready after {timeout}s"

    def log_tail(self, n=60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill(self):
        """SIGKILL: no goodbye, no flush — what a power cut looks like to the process."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout=30.0):
        """SIGTERM and wait for a graceful exit."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
                raise
        return self.proc.returncode if self.proc else None

    def cli(self, *args, check=True, input=None) -> subprocess.CompletedProcess:
        """Runs `tern --admin URL --data DIR ARGS...` and returns the finished process."""
        cmd = [tern_bin(), "--admin", self.admin_url, "--data", str(self.data_dir), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, input=input)
        if check and done.returncode != 0:
            raise AssertionError(f"{cmd} failed ({done.returncode}): {done.stderr}")
        return done

    def add_account(self, address: str, password: str = PASSWORD, quota: int | None = None):
        args = ["account", "add", address, "--password", password]
        if quota is not None:
            args += ["--quota", str(quota)]
        self.cli(*args)

    def admin_get(self, path: str):
        token = (self.data_dir / "admin.token").read_text().strip()
        req = urllib.request.Request(self.admin_url + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())


class ProxiedTern(Tern):
    """A `Tern` whose client listeners expect a PROXY protocol header from the peers in
    `proxy_from` (`[listeners] proxy_protocol_from`); everyone else connects directly."""

    def __init__(self, data_dir: Path, proxy_from: list[str], **kwargs):
        self.proxy_from = list(proxy_from)
        super().__init__(data_dir, **kwargs)

    def write_config(self):
        super().write_config()
        entries = ", ".join(f'"{e}"' for e in self.proxy_from)
        text = self.config_path.read_text().replace(
            "[listeners]\n", f"[listeners]\nproxy_protocol_from = [{entries}]\n", 1)
        self.config_path.write_text(text)


def message(subject: str, body: str = "Hello from the Tern test suite.\r\n", sender="alice@remote.example",
            to="bob@test.example", message_id: str | None = None) -> bytes:
    mid = message_id or f"<{subject.replace(' ', '-')}.{time.monotonic_ns()}@tests.tern>"
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n"
        f"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


@contextlib.contextmanager
def imap_with_messages(data_dir: Path, user: str, messages: list):
    """A server holding `user` (domain test.example) whose INBOX has `messages`, appended as
    (INTERNALDATE text, raw message) pairs, and an imaplib client logged in with INBOX
    selected; the server is killed afterwards."""
    server = Tern(data_dir).start()
    try:
        server.cli("domain", "add", "test.example")
        server.add_account(user)
        client = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
        client.login(user, PASSWORD)
        for date, raw in messages:
            typ, _ = client.append("INBOX", None, date, raw.encode())
            assert typ == "OK"
        assert client.select("INBOX")[1][0] == str(len(messages)).encode()
        yield client
        client.logout()
    finally:
        server.kill()
