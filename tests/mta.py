"""Real peers for end-to-end tests of mail transfer: a DNS server (unbound) and a remote MX
(Postfix), each a private instance on 127.0.0.1:<free port> with its files under the test's
tmp_path, plus DKIM checks with dkimpy.

- `Unbound(tmp_path, records)` serves zone-file lines ('remote.test. IN MX 10 mx.remote.test.')
  from static local zones; every other name is NXDOMAIN, so no query ever leaves the machine.
- `Postfix(tmp_path, domains)` accepts mail for `domains` into Maildirs; `.reject(address,
  '450 4.2.0 try later')` makes RCPT TO answer that code until `.accept(address)`.
- `dkim_verify(message, dns_port)` checks the first DKIM-Signature with keys from the Unbound.

Both servers are stopped by `.stop()`; fixtures call it in their finalizers. Every wait has a
deadline.
"""

import base64
import os
import pwd
import random
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import dkim
import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from ternlib import wait_until

_PORT_RANGE = (20000, 32000)


def free_port(udp: bool = False) -> int:
    """A port below the ephemeral range that is free for TCP (and UDP when `udp`) on 127.0.0.1."""
    for _ in range(1000):
        port = random.randint(*_PORT_RANGE)
        kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
        try:
            for kind in kinds:
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


def _sbin(name: str) -> str:
    """A daemon's binary: on PATH, or in /usr/sbin where Debian puts it (not always on PATH)."""
    return shutil.which(name) or f"/usr/sbin/{name}"


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"({path} not readable)"


# --- DNS -------------------------------------------------------------------------------------

_GENERATION_NAME = "generation.fixture."


def _zone_of(owner: str) -> str:
    """The zone a record is served from: its last two labels (`_dmarc.forged.test.` ->
    `forged.test.`, `1.0.0.127.bl.test.` -> `bl.test.`)."""
    labels = [label for label in owner.rstrip(".").split(".") if label]
    return ".".join(labels[-2:]).lower() + "."


def _split_txt(data: str) -> str:
    """TXT data as quoted character-strings of at most 255 bytes each (unbound rejects longer
    ones; DKIM keys need more, and verifiers concatenate the strings)."""
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', data) if '"' in data else [data]
    out = []
    for s in strings:
        if not s:
            out.append('""')
        for i in range(0, len(s), 255):
            out.append('"' + s[i:i + 255] + '"')
    return " ".join(out)


def _normalize(record: str) -> tuple[str, str]:
    """(owner, unbound local-data RR) for one zone-file line; adds the trailing dot, a TTL of 1 s
    when none is given (so a changed record is seen at once), and splits long TXT strings."""
    tokens = record.split()
    if len(tokens) < 3:
        raise ValueError(f"not a zone-file record: {record!r}")
    owner = tokens[0] if tokens[0].endswith(".") else tokens[0] + "."
    rest = record.split(None, 1)[1]
    ttl = "1"
    if m := re.match(r"(\d+)\s+", rest):
        ttl, rest = m.group(1), rest[m.end():]
    if m := re.match(r"IN\s+", rest, re.IGNORECASE):
        rest = rest[m.end():]
    rtype, _, data = rest.partition(" ")
    rtype, data = rtype.upper(), data.strip()
    if rtype == "TXT":
        data = _split_txt(data)
    return owner, f"{owner} {ttl} IN {rtype} {data}"


def _query(name: str, rdtype: str, port: int, timeout: float) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    return dns.query.udp_with_fallback(q, "127.0.0.1", port=port, timeout=timeout)[0]


class Unbound:
    """A private unbound on 127.0.0.1:<port> serving `records` (zone-file lines). Each owner's
    zone (its last two labels, or one of `zones`) is a static local zone with an SOA whose
    negative TTL is 1 s: unknown names in it are NXDOMAIN. The root is static too, so names
    outside every zone are NXDOMAIN at once instead of being looked up on the internet."""

    def __init__(self, tmp_path, records: list[str], zones: list[str] | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="unbound-", dir=tmp_path))
        self.conf_path = self.dir / "unbound.conf"
        self.log_path = self.dir / "unbound.log"
        self.zones = [z if z.endswith(".") else z + "." for z in (zones or [])]
        self.records = list(records)
        self.generation = 0
        self.proc = None
        self.port = 0
        self._start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> str:
        data = [_normalize(r) for r in self.records]
        zones = list(self.zones)
        for owner, _ in data:
            if not any(owner.lower() == z.lower() or owner.lower().endswith("." + z.lower()) for z in zones):
                zones.append(_zone_of(owner))
        has_soa = {owner.lower() for owner, rr in data if rr.split()[3] == "SOA"}
        lines = [
            "server:",
            f"  interface: 127.0.0.1@{self.port}",
            f"  port: {self.port}",
            "  do-ip4: yes",
            "  do-ip6: no",
            "  do-udp: yes",
            "  do-tcp: yes",
            "  do-not-query-localhost: no",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{self.dir}"',
            f'  pidfile: "{self.dir}/unbound.pid"',
            "  use-syslog: no",
            '  logfile: ""',
            "  verbosity: 1",
            "  num-threads: 1",
            "  so-reuseport: no",
            '  module-config: "iterator"',
            "  access-control: 127.0.0.0/8 allow",
            '  local-zone: "." static',
            '  local-data: ". 1 IN SOA fixture. hostmaster.fixture. 1 1 1 1 1"',
            '  local-zone: "fixture." static',
            f'  local-data: \'{_GENERATION_NAME} 0 IN TXT "{self.generation}"\'',
        ]
        for zone in dict.fromkeys(zones):
            lines.append(f'  local-zone: "{zone}" static')
            if zone.lower() not in has_soa:
                lines.append(f'  local-data: "{zone} 1 IN SOA ns.{zone} hostmaster.{zone} 1 1 1 1 1"')
        for _, rr in data:
            if "'" in rr:
                raise ValueError(f"single quote in a record is not supported: {rr!r}")
            lines.append(f"  local-data: '{rr}'")
        lines += ["remote-control:", "  control-enable: no"]
        return "\n".join(lines) + "\n"

    def _start(self, attempts: int = 5):
        for _ in range(attempts):
            self.port = free_port(udp=True)
            self.conf_path.write_text(self._config())
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([_sbin("unbound"), "-d", "-c", str(self.conf_path)],
                                         stdout=log, stderr=subprocess.STDOUT)
            log.close()
            try:
                self._wait_generation(timeout=15)
                return
            except (TimeoutError, RuntimeError):
                in_use = "Address already in use" in _tail(self.log_path)
                self.stop()
                if not in_use:
                    raise RuntimeError(f"unbound did not start:\n{_tail(self.log_path)}") from None
        raise RuntimeError(f"unbound: no free port after {attempts} attempts")

    def _wait_generation(self, timeout: float):
        def served():
            if self.proc.poll() is not None:
                raise RuntimeError(f"unbound exited with {self.proc.returncode}:\n{_tail(self.log_path)}")
            answer = self.query(_GENERATION_NAME, "TXT", timeout=1)
            return any(str(rr).strip('"') == str(self.generation) for rrset in answer.answer for rr in rrset)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if served():
                    return
            except dns.exception.Timeout:
                pass
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"unbound on port {self.port} does not serve generation {self.generation}")

    def query(self, name: str, rdtype: str, timeout: float = 3.0) -> dns.message.Message:
        """One query to this server (UDP, TCP if truncated); the full response (rcode(), answer,
        authority)."""
        return _query(name, rdtype, self.port, timeout)

    def txt(self, name: str) -> list[str]:
        """The TXT strings at `name` (each record's strings joined), [] if none."""
        r = self.query(name, "TXT")
        return [b"".join(rr.strings).decode() for rrset in r.answer for rr in rrset
                if rrset.rdtype == dns.rdatatype.TXT]

    def set_records(self, records: list[str], timeout: float = 15.0):
        """Replaces every record, reloads (SIGHUP) and waits until the new set is served."""
        self.records = list(records)
        self.generation += 1
        self.conf_path.write_text(self._config())
        self.proc.send_signal(signal.SIGHUP)
        self._wait_generation(timeout)

    def add_records(self, records: list[str], timeout: float = 15.0):
        """Adds records to the served set (see `set_records`)."""
        self.set_records(self.records + list(records), timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# --- Postfix ---------------------------------------------------------------------------------

_MASTER_CF = """\
{listen} inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

# What every private Postfix here has (the test MX and the benchmark's): its own queue and
# data dirs, loopback only, no local delivery, no relaying, no TLS, no anti-abuse throttling,
# no outbound mail. Postfix takes the last value of a repeated parameter, so a user may append
# its own settings.
POSTFIX_BASE_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
mydomain = {domain}
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
relay_domains =
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:this private instance sends no mail
relay_transport = error:this private instance sends no mail
smtputf8_enable = yes
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtpd_peername_lookup = no
smtpd_error_sleep_time = 0s
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
in_flow_delay = 0s
message_size_limit = 52428800
biff = no
append_dot_mydomain = no
delay_warning_time = 0h
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
"""

_MAIN_CF = POSTFIX_BASE_CF + """\
smtpd_recipient_restrictions = check_recipient_access tcp:127.0.0.1:{access_port}, permit
smtpd_end_of_data_restrictions = check_recipient_access tcp:127.0.0.1:{eod_port}, permit
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {dir}/maildirs
virtual_mailbox_maps = static:all/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_mailbox_limit = 0
"""


class _TcpTable:
    """A Postfix lookup table served over the tcp_table(5) protocol (`get KEY` -> `200 VALUE` |
    `500 not found`, %-encoded): `lookup(key)` answers, None = not found. Postfix asks at every
    lookup, so a change takes effect at once, also in SMTP sessions already open."""

    def __init__(self, lookup):
        self.lookup = lookup
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn, conn.makefile("rwb") as f:
            for line in f:
                parts = line.decode("ascii", "replace").strip().split(" ", 1)
                if len(parts) != 2 or parts[0] != "get":
                    f.write(b"400 bad request\n")
                else:
                    value = self.lookup(urllib.parse.unquote(parts[1]).lower())
                    if value is None:
                        f.write(b"500 not found\n")
                    else:
                        f.write(b"200 " + urllib.parse.quote(value, safe="").encode() + b"\n")
                f.flush()

    def close(self):
        self.closed = True
        self.sock.close()


def _allow_traverse(path: Path):
    """virtual(8) writes the Maildirs as an unprivileged user, which must be able to pass
    through the directories above them; pytest makes its base directories 0700. Adds only the
    search (x) bit for others, on directories this user owns."""
    for parent in [path, *path.parents]:
        try:
            st = parent.stat()
        except OSError:
            continue
        if st.st_uid == os.getuid() and not st.st_mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


class Postfix:
    """A private Postfix (own config, queue, data and Maildir directories under tmp_path) on
    127.0.0.1:<port>, the final destination for `domains`: mail to any address there is stored
    in one Maildir, `maildirs/all/`, told apart by Delivered-To (see `messages`). It sends no mail (every other transport is
    `error`), relays for nobody, and logs to `maillog` in its directory."""

    def __init__(self, tmp_path, domains: list[str], port: int | None = None,
                 hostname: str = "postfix.fixture.test"):
        if os.geteuid() != 0:
            raise RuntimeError("the Postfix fixture runs postfix(1), which needs root")
        self.dir = Path(tempfile.mkdtemp(prefix="postfix-", dir=tmp_path))
        self.domains = [d.lower().rstrip(".") for d in domains]
        self.hostname = hostname
        self.etc = self.dir / "etc"
        self.maildirs = self.dir / "maildirs"
        self.log_path = self.dir / "maillog"
        # check_recipient_access: a file map (hash, texthash) is read when a smtpd process
        # starts, so a change would not reach an SMTP session that is already open -- and a
        # relay that reuses its connection keeps that session across its retries. A tcp table
        # is asked at every RCPT TO.
        self.rejects: dict[str, str] = {}
        self.access = _TcpTable(self.rejects.get)
        # The end-of-data check of a single-recipient message: `hold` parks it there.
        self.holds: dict[str, tuple[threading.Event, threading.Event]] = {}
        self.end_of_data = _TcpTable(self._end_of_data)
        self.running = False
        self._fixed_port = port
        self.port = port or 0
        try:
            self._setup()
            self._start()
        except BaseException:
            self.stop()
            raise

    def _setup(self):
        nobody = pwd.getpwnam("nobody")
        postfix_user = pwd.getpwnam("postfix")
        for d in (self.etc, self.dir / "queue", self.dir / "data", self.maildirs):
            d.mkdir(parents=True, exist_ok=True)
        os.chown(self.dir / "data", postfix_user.pw_uid, postfix_user.pw_gid)
        os.chown(self.maildirs, nobody.pw_uid, nobody.pw_gid)
        _allow_traverse(self.dir)
        (self.etc / "main.cf").write_text(_MAIN_CF.format(
            dir=self.dir, hostname=self.hostname, domain=self.hostname, access_port=self.access.port,
            eod_port=self.end_of_data.port,
            domains=", ".join(self.domains) or "fixture.invalid", uid=nobody.pw_uid, gid=nobody.pw_gid))

    def _postfix(self, *args, timeout=60) -> subprocess.CompletedProcess:
        return postfix_command(self.etc, *args, timeout=timeout)

    def _start(self, attempts: int = 5):
        for _ in range(attempts):
            if not self._fixed_port:
                self.port = free_port()
            (self.etc / "master.cf").write_text(_MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
            done = self._postfix("start")
            if done.returncode != 0:
                if not self._fixed_port and "Address already in use" in _tail(self.log_path, 5):
                    continue
                raise RuntimeError(f"postfix start failed ({done.returncode}): {done.stderr}\n"
                                   f"maillog:\n{_tail(self.log_path)}")
            self.running = True
            try:
                wait_until(self._answers_ehlo, timeout=30, what=f"postfix EHLO on port {self.port}")
                return
            except TimeoutError:
                in_use = "Address already in use" in _tail(self.log_path)
                self._stop_postfix()
                if self._fixed_port or not in_use:
                    raise RuntimeError(f"postfix does not answer on port {self.port}:\n"
                                       f"{_tail(self.log_path)}") from None
        raise RuntimeError(f"postfix: no free port after {attempts} attempts")

    def _answers_ehlo(self) -> bool:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=5) as s:
            code, _ = s.ehlo("probe.fixture.test")
            return code == 250

    def log(self) -> str:
        return _tail(self.log_path, 200)

    def messages(self, address: str) -> list[bytes]:
        """The messages delivered to `address`, oldest first. virtual(8) allows neither regexp
        substitution nor tcp tables for Maildir paths, so every address shares the one Maildir
        `maildirs/all/` and a message belongs to the address in its Delivered-To header, which
        virtual(8) prepends per recipient (the topmost one). Stored with LF line ends."""
        box = self.maildirs / "all"
        files = [p for sub in ("new", "cur") if (box / sub).is_dir() for p in (box / sub).iterdir()]
        files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
        out = []
        for p in files:
            data = p.read_bytes()
            header = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
            m = re.search(rb"^Delivered-To: *([^\r\n]*)", header, re.MULTILINE | re.IGNORECASE)
            if m and m.group(1).decode(errors="replace").strip().lower() == address.lower():
                out.append(data)
        return out

    def wait_for(self, address: str, count: int = 1, timeout: float = 30.0) -> list[bytes]:
        """Waits until at least `count` messages were delivered to `address`; returns them all."""
        try:
            return wait_until(lambda: len(m := self.messages(address)) >= count and m, timeout=timeout,
                              what=f"{count} message(s) for {address} in Postfix")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\npostfix maillog:\n{_tail(self.log_path, 30)}") from None

    def wait_idle(self, timeout: float = 30.0):
        """Waits until Postfix's own queue is empty: everything it accepted is in the Maildir."""
        queue = self.dir / "queue"

        def idle():
            return not any(f.is_file() for sub in ("maildrop", "incoming", "active", "deferred", "hold")
                           for f in (queue / sub).rglob("*"))

        try:
            wait_until(idle, timeout=timeout, what="postfix queue to empty")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\npostfix maillog:\n{_tail(self.log_path, 30)}") from None

    def reject(self, address: str, code_text: str):
        """From now on RCPT TO:<address> is answered with `code_text` ('450 4.2.0 try later',
        '550 5.1.1 no such user'), also within SMTP sessions already open."""
        if not re.match(r"^[45]\d\d ", code_text):
            raise ValueError(f"an access-map reply starts with a 4xx or 5xx code: {code_text!r}")
        self.rejects[address.lower()] = code_text

    def accept(self, address: str):
        """Undoes `reject(address)`."""
        self.rejects.pop(address.lower(), None)

    def hold(self, address: str):
        """From now on a message to `address` (alone) is held after its final '.' was received and
        before Postfix answers it, until `release(address)`: the window in which a client that
        dies cannot know that the message was taken. `wait_held` tells when one is there."""
        self.holds[address.lower()] = (threading.Event(), threading.Event())

    def wait_held(self, address: str, timeout: float = 30.0):
        """Waits until a message to `address` is held at end of data."""
        entered, _ = self.holds[address.lower()]
        if not entered.wait(timeout):
            raise TimeoutError(f"no message to {address} reached end of data within {timeout}s\n"
                               f"postfix maillog:\n{_tail(self.log_path, 30)}")

    def release(self, address: str):
        """Lets a held message (and any later one) to `address` go on; Postfix then queues it."""
        _, release = self.holds.pop(address.lower())
        release.set()

    def _end_of_data(self, key: str) -> None:
        hold = self.holds.get(key)
        if hold:
            entered, release = hold
            entered.set()
            release.wait(90)  # below the tcp_table client's 100 s timeout
        return None

    def stop(self, timeout: float = 30.0):
        """Stops the instance (postfix stop, then SIGKILL of its master if it lingers)."""
        self._stop_postfix(timeout)
        for _, release in list(self.holds.values()):
            release.set()
        self.access.close()
        self.end_of_data.close()

    def _stop_postfix(self, timeout: float = 30.0):
        if self.running:
            self.running = False
            stop_postfix(self.etc, self.dir, timeout)


def postfix_command(etc: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`postfix -c ETC ARGS...` for a private instance."""
    return subprocess.run([_sbin("postfix"), "-c", str(etc), *args], capture_output=True, text=True,
                          timeout=timeout)


def postfix_master_pid(dir: Path) -> int | None:
    """The master's pid of the private instance whose queue is under `dir`, if it runs."""
    try:
        return int((dir / "queue" / "pid" / "master.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def stop_postfix(etc: Path, dir: Path, timeout: float = 30.0) -> None:
    """`postfix stop`, then waits for the master to exit; SIGKILL when it has not in `timeout`."""
    pid = postfix_master_pid(dir)
    postfix_command(etc, "stop")
    if pid:
        try:
            wait_until(lambda: not _alive(pid), timeout=timeout, what="postfix master to exit")
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"  # a zombie has exited
    except OSError:
        return False


# --- DKIM ------------------------------------------------------------------------------------

def dkim_dnsfunc(dns_port: int):
    """A dkimpy `dnsfunc` that reads TXT records from the DNS server on 127.0.0.1:dns_port."""

    def get_txt(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        r = _query(name, "TXT", dns_port, timeout)
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                for rr in rrset:
                    return b"".join(rr.strings)
        return None

    return get_txt


def dkim_verify(message_bytes: bytes, dns_port: int) -> bool:
    """True if the message's (first) DKIM signature verifies with the key published in DNS."""
    crlf = re.sub(rb"(?<!\r)\n", b"\r\n", message_bytes)  # a Maildir file has LF line ends
    return bool(dkim.verify(crlf, dnsfunc=dkim_dnsfunc(dns_port)))


def dkim_keypair(directory) -> tuple[bytes, str]:
    """A new RSA-2048 key: (PKCS#8 PEM private key for dkim.sign, the DKIM TXT value
    'v=DKIM1; k=rsa; p=...')."""
    directory = Path(directory)
    key = directory / f"dkim-{time.monotonic_ns()}.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(key)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return key.read_bytes(), "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def dkim_sign(message_bytes: bytes, domain: str, private_pem: bytes, selector: str = "test") -> bytes:
    """The message with a relaxed/relaxed rsa-sha256 DKIM-Signature header prepended."""
    sig = dkim.sign(message_bytes, selector.encode(), domain.encode(), private_pem,
                    canonicalize=(b"relaxed", b"relaxed"))
    return sig + message_bytes
