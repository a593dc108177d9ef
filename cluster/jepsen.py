"""A Jepsen-style fault run against a local cluster (cluster/ternlocal.py), and its checker.

Used by tests/test_cluster_faults.py (a few rounds) and benches/faults.py (as many as you like):

    with ternlocal.Cluster(dir) as c:
        c.up(3, partitions=8, spare=1)           # the spare slot is the wipe's replacement
        report = jepsen.run(c, rounds=6, seed=1)
        print(report.table())
        assert not report.failures(), report.table()

The scenario:
  1. a domain and a few accounts through the CLI; every INBOX's UIDVALIDITY read on every node;
  2. load: a few SMTP sender threads send through HAProxy's SMTP port, one connection per attempt,
     every message with a unique Message-ID and Subject. A message is *acknowledged* when DATA got
     its 250; anything else (an error, a 4xx/5xx, a timeout, a dropped connection) is not, and the
     sender retries it the way a real MTA does: the SAME message, byte for byte (same Message-ID,
     same Date), until some attempt gets its 250 or the load stops. So a message whose first
     attempt committed but whose 250 was lost is sent again — and must still be stored once;
  3. meanwhile the nemesis injects one fault at a time on a random member, from {kill + restart,
     pause + resume, partition + heal, deaf + heal (the node's link requests arrive and act but
     every reply to it is dropped: a forwarded proposal commits and its outcome is lost), wipe
     (below)}, holds it 1-3 s, undoes it and waits (with a deadline) until every member is ready
     and reachable and every group has a leader and its voters, before the next. The first rounds
     play every kind once, in a seeded order (so 5 rounds cover them all), then any kind but wipe;
  4. wipe, at most once a run and only while every other member is up and connected: SIGKILL,
     the data dir emptied, the node restarted under the same id. It must be refused: its `cluster
     join` fails with "lost its data", a member's log shows its link refused, and it is never
     ready. Then the operator's procedure: `cluster remove ID --dead` on a live member, the wiped
     process stopped, and a replacement joined under a new id (a spare slot: `up(..., spare=1)`);
     undone once every member is ready, every group has its voters again and HAProxy has the new
     node in rotation. The run goes on with the new membership (`Cluster.members`);
  5. then load stops, every partition is healed, every member resumed or restarted, and the run
     waits (deadlines, no blind sleeps) until every member is ready and the replicas converged;
     then the whole cluster is killed (SIGKILL, every member) and started again, and the run waits
     for readiness and convergence once more — so the checker also proves that a whole-cluster
     power cut keeps everything acknowledged;
  6. the checker reads every INBOX directly on every current member (not through HAProxy) over
     IMAP: UIDVALIDITY, and UID + Message-ID + Subject of every message. A wiped and removed node
     is not read; its replacement is, like every other member.

The musts: no acknowledged message lost (on any member), no Message-ID present twice, no message
in the wrong account or unknown to the run, Subjects match, UIDs strictly increasing in sequence
order, UIDVALIDITY the same on every member and unchanged since before the faults, and every
member holding the same (UID, Message-ID) list for every account; and some messages were
acknowledged while a fault was active. A message that was never acknowledged (the load stopped
while it was being retried) may be present, at most once.

Python 3.11 standard library only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import imaplib
import random
import re
import smtplib
import threading
import time
from pathlib import Path
from typing import Callable

from ternlocal import Cluster, ClusterError, group_leaders, http_status

PASSWORD = "jepsen secret"
DOMAIN = "jepsen.test"
SENDER = "load@remote.test"
FAULT_KINDS = ("kill", "pause", "partition", "deaf", "wipe")

SMTP_TIMEOUT = 8.0          # per socket operation of one SMTP transaction
IMAP_TIMEOUT = 30.0
RECOVER_TIMEOUT = 60.0      # a node is ready again after its fault was undone
WIPE_TIMEOUT = 120.0        # a wiped node is refused; its replacement is in, every group filled
SETTLE_TIMEOUT = 90.0       # after the run: every node ready, every group led, replicas converged
JOIN_TIMEOUT = 60.0         # the sender threads finish their last transaction


# --- records -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Send:
    """One message with its own Message-ID, and its SMTP attempts (each on a new connection)."""
    mid: str                    # "<...>"
    subject: str
    account: str
    sender: int                 # the thread
    start: float                # time.monotonic() of the first attempt
    end: float = 0.0            # ... of the end of the last attempt
    acked: bool = False
    error: str = ""             # the last failed attempt's error
    retry_of: str | None = None  # unused: a retry resends the same message (kept for callers)
    attempts: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)   # every failed attempt's
    message: bytes = b""        # the bytes every attempt sends


@dataclasses.dataclass
class Fault:
    kind: str
    node: int
    start: float
    end: float = 0.0            # when it was undone (a wipe: its replacement was taken in)
    recovered: float = 0.0      # when the node was ready again (a wipe: every member, every group)
    replacement: int | None = None   # a wipe: the node that joined in the wiped one's place

    def describe(self) -> str:
        held = (self.end or time.monotonic()) - self.start
        back = f", ready {self.recovered - self.end:.1f}s later" if self.recovered else ""
        instead = (f" (refused, removed, replaced by node {self.replacement})"
                   if self.replacement else "")
        return f"{self.kind} node {self.node} for {held:.1f}s{instead}{back}"


@dataclasses.dataclass
class Message:
    """One message as an IMAP FETCH showed it."""
    seq: int
    uid: int
    mid: str | None
    subject: str | None


@dataclasses.dataclass
class Inbox:
    uidvalidity: int | None
    exists: int
    messages: list[Message]


# --- IMAP ----------------------------------------------------------------------------------------

_MID = re.compile(rb"^Message-ID:[ \t]*(.*?)\s*$", re.I | re.M)
_SUBJECT = re.compile(rb"^Subject:[ \t]*(.*?)\s*$", re.I | re.M)
_UID = re.compile(rb"\bUID (\d+)")
_SEQ = re.compile(rb"^(\d+) \(")


def _unfold(header: bytes) -> bytes:
    return re.sub(rb"\r?\n[ \t]+", b" ", header)


def parse_fetch(data: list) -> list[Message]:
    """The messages of an imaplib FETCH answer for (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID
    SUBJECT)]), whatever order the server puts UID and the literal in."""
    records: list[list[bytes]] = []        # [text outside literals, literal]
    for item in data:
        if isinstance(item, tuple):
            records.append([item[0], item[1] or b""])
        elif isinstance(item, bytes) and records:
            records[-1][0] += b" " + item
    out = []
    for text, literal in records:
        seq, uid = _SEQ.match(text), _UID.search(text)
        if not seq or not uid:
            raise AssertionError(f"unparsable FETCH response: {text!r}")
        header = _unfold(literal)
        mid, subject = _MID.search(header), _SUBJECT.search(header)
        out.append(Message(int(seq.group(1)), int(uid.group(1)),
                           mid.group(1).decode(errors="replace") if mid else None,
                           subject.group(1).decode(errors="replace") if subject else None))
    return out


def imap_login(host: str, port: int, user: str, password: str = PASSWORD,
               timeout: float = IMAP_TIMEOUT) -> imaplib.IMAP4:
    m = imaplib.IMAP4(host, port, timeout=timeout)
    try:
        m.login(user, password)
    except BaseException:
        with contextlib.suppress(Exception):
            m.shutdown()
        raise
    return m


def read_inbox(host: str, port: int, user: str, password: str = PASSWORD,
               timeout: float = IMAP_TIMEOUT) -> Inbox:
    """EXAMINE INBOX and FETCH every message's UID, Message-ID and Subject."""
    m = imap_login(host, port, user, password, timeout)
    try:
        typ, data = m.select("INBOX", readonly=True)
        if typ != "OK":
            raise AssertionError(f"{user} on {host}:{port}: EXAMINE INBOX: {typ} {data}")
        exists = int(data[0])
        uv = m.response("UIDVALIDITY")[1]
        uidvalidity = int(uv[-1]) if uv and uv[-1] is not None else None
        messages: list[Message] = []
        if exists:
            typ, data = m.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)])")
            if typ != "OK":
                raise AssertionError(f"{user} on {host}:{port}: FETCH: {typ} {data}")
            messages = parse_fetch(data)
        return Inbox(uidvalidity, exists, sorted(messages, key=lambda r: r.seq))
    finally:
        with contextlib.suppress(Exception):
            m.logout()


def read_inbox_on(cluster: Cluster, node: int, user: str, deadline: float = 30.0) -> Inbox:
    """read_inbox directly on node i, retrying connection failures until the deadline."""
    end = time.monotonic() + deadline
    while True:
        try:
            return read_inbox(*cluster.node_addr(node, "imap"), user)
        except (OSError, imaplib.IMAP4.error) as e:
            if time.monotonic() > end:
                raise AssertionError(f"node {node}: cannot read {user}'s INBOX over IMAP within "
                                     f"{deadline:.0f}s: {e!r}") from e
            time.sleep(0.2)


# --- SMTP ----------------------------------------------------------------------------------------

def make_message(mid: str, subject: str, to: str, padding: int = 0) -> bytes:
    """A small message, or one with about `padding` more bytes of text."""
    filler = ("x" * 76 + "\r\n") * (padding // 78)
    return (f"From: {SENDER}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n"
            f"Date: {email.utils.formatdate()}\r\n\r\n{subject}\r\n{filler}").encode()


def smtp_send(addr: tuple[str, int], to: str, mid: str, subject: str,
              timeout: float = SMTP_TIMEOUT, padding: int = 0,
              message: bytes | None = None) -> None:
    """One transaction on a new connection; returns when DATA got its 250, raises otherwise.
    `message`: these exact bytes (a retry), else a new message is made."""
    smtp = smtplib.SMTP(timeout=timeout)
    try:
        code, banner = smtp.connect(*addr)
        if code != 220:
            raise smtplib.SMTPConnectError(code, banner)
        smtp.sendmail(SENDER, [to], message or make_message(mid, subject, to, padding))
    finally:
        with contextlib.suppress(Exception):
            smtp.quit()
        with contextlib.suppress(Exception):
            smtp.close()


# --- a wiped node ------------------------------------------------------------------------------

def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _logged_since(path: Path, offset: int, text: str) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return text.encode() in f.read()
    except FileNotFoundError:
        return False


def wait_refused(cluster: Cluster, node: int, marks: dict[int, int],
                 deadline: float = WIPE_TIMEOUT) -> str:
    """Waits until the wiped, restarted `node` is refused: its `cluster join` fails with "lost its
    data" and some other member's log (after its offset in `marks`) shows the node's link refused;
    fails at once if the node joins or says it is ready. Returns the join's refusal."""
    seed = "%s:%d" % cluster.node_addr(next(iter(marks)), "advertise")
    peer_line = f"node {node}'s data dir is not the one the cluster knows"
    end = time.monotonic() + deadline
    refused, seen, last = "", False, "nothing yet"
    while time.monotonic() < end:
        if http_status(cluster.admin_url(node) + "/health/ready") == 200:
            raise AssertionError(f"node {node} says it is ready with a wiped data dir")
        if not refused:
            try:
                cluster.cli(node, "cluster", "join", "--seed", seed, timeout=10)
            except ClusterError as e:
                last = str(e)
                why = (re.search(r"refused this node: ([^\n]*?lost its data)", last)
                       or re.search(r"([^\n]*lost its data)", last))
                refused = why.group(1) if why else ""
            else:
                raise AssertionError(f"node {node} joined the cluster again with a wiped data dir")
        seen = seen or any(_logged_since(cluster.log_path(k), at, peer_line)
                           for k, at in marks.items())
        if refused and seen:
            return refused
        time.sleep(0.2)
    raise AssertionError(f"node {node} not refused within {deadline:.0f}s after its wipe "
                         f"(join refused: {bool(refused)}, a member's log refuses it: {seen}; "
                         f"last join answer: {last[:300]})")


def wait_voters(cluster: Cluster, deadline: float = WIPE_TIMEOUT) -> None:
    """Waits until every group's voters, as its leader sees them, are min(3, N) current members
    (no removed node left among them: `wait_all_ready` counts voters, not who they are)."""
    end = time.monotonic() + deadline
    members, want = set(cluster.members), min(3, len(cluster.members))
    last = "no answer"
    while time.monotonic() < end:
        try:
            groups = group_leaders(cluster.cluster_status())
        except ClusterError as e:
            last = str(e)
        else:
            wrong = {g: (v or {}).get("voters") for g, v in sorted(groups.items())
                     if v is None or not set(v.get("voters") or []) <= members
                     or len(v.get("voters") or []) != want}
            if groups and not wrong:
                return
            last = f"group(s) without {want} voters among {sorted(members)}: {wrong}"
        time.sleep(0.2)
    raise AssertionError(f"the groups' voters are not current members within {deadline:.0f}s: "
                         f"{last}")


# --- the run -------------------------------------------------------------------------------------

class Run:
    """The load, the nemesis and their records, for one cluster."""

    def __init__(self, cluster: Cluster, accounts: list[str], senders: int, seed: int,
                 log: Callable[[str], None], interval: float = 0.0,
                 kinds: tuple[str, ...] = FAULT_KINDS):
        self.cluster = cluster
        self.kinds = kinds
        self.accounts = accounts
        self.senders = senders
        self.seed = seed
        self.rng = random.Random(seed)
        self.log = log
        self.interval = interval
        self.tag = f"{seed:x}.{random.getrandbits(32):08x}"
        self.sends: list[Send] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.seq = 0
        self.nemesis_error: BaseException | None = None
        self._log_marks: dict[int, int] = {}     # a wipe: the other members' log sizes before it

    # -- load

    def _next(self, sender: int, account: str, retry_of: str | None) -> Send:
        with self.lock:
            self.seq += 1
            n = self.seq
            s = Send(mid=f"<{self.tag}.{n}@jepsen.tern.test>", subject=f"jepsen {self.tag} #{n}",
                     account=account, sender=sender, start=time.monotonic(), retry_of=retry_of)
            self.sends.append(s)
        return s

    def _sender(self, k: int) -> None:
        rng = random.Random(self.seed * 1000 + k)
        addr = self.cluster.ports["smtp"]
        while not self.stop.is_set():
            s = self._next(k, rng.choice(self.accounts), None)
            s.message = make_message(s.mid, s.subject, s.account)
            # Like an MTA's queue: the same bytes again after any failure, until a 250.
            while not self.stop.is_set():
                s.attempts += 1
                try:
                    smtp_send(addr, s.account, s.mid, s.subject, message=s.message)
                    s.acked = True
                    break
                except Exception as e:  # noqa: BLE001 - any failure: not acknowledged
                    s.error = f"{type(e).__name__}: {e}"[:200]
                    s.errors.append(s.error)
                    self.stop.wait(0.05)          # do not spin on a refused connection
                finally:
                    s.end = time.monotonic()
            if self.interval:
                self.stop.wait(self.interval)

    # -- nemesis

    def _nemesis(self, rounds: int, hold: tuple[float, float]) -> None:
        c = self.cluster
        # Every kind once (in a seeded order) before any repeats, so a short run covers them all;
        # at most one wipe (each takes a spare slot).
        first = self.rng.sample(self.kinds, len(self.kinds))
        later = [k for k in self.kinds if k != "wipe"]
        try:
            for r in range(rounds):
                if self.stop.is_set():
                    return
                kind = first[r] if r < len(first) else self.rng.choice(later)
                node = self.rng.choice(c.members)
                f = Fault(kind, node, time.monotonic())
                with self.lock:
                    self.faults.append(f)
                {"kill": c.kill, "pause": c.pause, "partition": c.partition,
                 "deaf": c.deafen, "wipe": self._wipe}[kind](node)
                time.sleep(self.rng.uniform(*hold))      # holding the fault is the point
                if kind == "kill":
                    c.restart(node, RECOVER_TIMEOUT)
                elif kind == "pause":
                    c.resume(node)
                elif kind == "wipe":
                    f.replacement = self._replace(node)
                else:                                   # partition, deaf
                    c.heal()
                f.end = time.monotonic()
                # Not just the node's /health/ready (a restarted node answers 200 from the leader
                # it remembers): every node ready and reachable, every group led by a quorum. After
                # a wipe, also every group's voters back and HAProxy sending to the new node.
                if kind == "wipe":
                    c.wait_all_ready(WIPE_TIMEOUT)
                    wait_voters(c, WIPE_TIMEOUT)
                else:
                    c.wait_all_ready(RECOVER_TIMEOUT, haproxy=False)
                f.recovered = time.monotonic()
                self.log(f"round {r + 1}/{rounds}: {f.describe()}")
                time.sleep(self.rng.uniform(0.3, 1.0))   # a little calm between faults
        except BaseException as e:                       # reported by run()
            self.nemesis_error = e
            self.log(f"nemesis failed: {e}")

    def _wipe(self, node: int) -> None:
        """A lost disk: SIGKILL `node` and empty its data dir, never while another member is
        down, paused or cut off (one fault at a time: the others must hold a quorum)."""
        c = self.cluster
        others = [k for k in c.members if k != node]
        down = {k: c.node_state(k) for k in others if c.node_state(k) != "running"}
        if down or c.partitioned() or c.deaf():
            raise AssertionError(f"wipe of node {node} refused: other members not all up "
                                 f"({down}, partitioned {c.partitioned()}, deaf {c.deaf()})")
        self._log_marks = {k: _size(c.log_path(k)) for k in others}
        c.wipe(node)

    def _replace(self, node: int) -> int:
        """Restarts the wiped `node`, waits until it is refused, then the operator's procedure:
        `cluster remove --dead`, the process stopped, a spare joined; returns the new id."""
        c = self.cluster
        c.restart(node, RECOVER_TIMEOUT)
        why = wait_refused(c, node, self._log_marks, WIPE_TIMEOUT)
        self.log(f"node {node} wiped and refused: {why}")
        c.remove_dead(node)
        return c.join(WIPE_TIMEOUT, wait=False)

    def go(self, rounds: int, hold: tuple[float, float] = (1.0, 3.0), warmup: float = 1.0) -> None:
        threads = [threading.Thread(target=self._sender, args=(k,), name=f"sender-{k}",
                                    daemon=True) for k in range(self.senders)]
        for t in threads:
            t.start()
        try:
            # Some mail before the first fault (the load works at all), then the faults.
            end = time.monotonic() + warmup + 30
            while not any(s.acked for s in list(self.sends)):
                if time.monotonic() > end:
                    raise AssertionError("no message acknowledged within 30s before any fault")
                time.sleep(0.05)
            time.sleep(warmup)
            nemesis = threading.Thread(target=self._nemesis, args=(rounds, hold), name="nemesis",
                                       daemon=True)
            nemesis.start()
            nemesis.join()
        finally:
            self.stop.set()
            end = time.monotonic() + JOIN_TIMEOUT
            for t in threads:
                t.join(max(0.0, end - time.monotonic()))
            alive = [t.name for t in threads if t.is_alive()]
            if alive:
                raise AssertionError(f"sender threads {alive} still running {JOIN_TIMEOUT:.0f}s "
                                     "after the load stopped")

    def recover(self) -> None:
        """Heals, resumes and restarts every member; waits until all is ready and converged."""
        c = self.cluster
        c.heal()
        for i in c.members:
            state = c.node_state(i)
            if state == "paused":
                c.resume(i)
            elif state == "killed":
                c.restart(i, RECOVER_TIMEOUT)
        c.wait_all_ready(SETTLE_TIMEOUT)
        c.wait_converged(SETTLE_TIMEOUT)

    def restart_all(self) -> None:
        """Kills every member at once (a power cut), starts them all again, waits until all is
        ready and converged."""
        c = self.cluster
        for i in c.members:
            c.kill(i)
        for i in c.members:
            c.restart(i, RECOVER_TIMEOUT)
        c.wait_all_ready(SETTLE_TIMEOUT)
        c.wait_converged(SETTLE_TIMEOUT)


# --- the checker ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Report:
    nodes: int
    partitions: int
    rounds: int
    seed: int
    senders: int
    accounts: list[str]
    faults: list[Fault]
    members: list[int] = dataclasses.field(default_factory=list)     # the nodes checked
    removed: list[int] = dataclasses.field(default_factory=list)     # wiped and removed
    sent: int = 0
    acked: int = 0
    acked_during_faults: int = 0
    unacked: int = 0
    retries: int = 0                    # attempts after a message's first
    retried_acked: int = 0              # messages acknowledged only on a later attempt
    lost: list[str] = dataclasses.field(default_factory=list)            # "mid: missing on n,m"
    duplicated: list[str] = dataclasses.field(default_factory=list)
    unacked_present: int = 0
    misdelivered: list[str] = dataclasses.field(default_factory=list)
    unknown: list[str] = dataclasses.field(default_factory=list)
    subject_mismatch: list[str] = dataclasses.field(default_factory=list)
    uid_order: list[str] = dataclasses.field(default_factory=list)
    uidvalidity: list[str] = dataclasses.field(default_factory=list)
    divergent: list[str] = dataclasses.field(default_factory=list)
    count_mismatch: list[str] = dataclasses.field(default_factory=list)
    realtime_inversions: int = 0          # informational
    per_node: dict = dataclasses.field(default_factory=dict)   # node → messages seen
    duration: float = 0.0
    errors: dict = dataclasses.field(default_factory=dict)     # error kind → count

    def failures(self) -> list[str]:
        out = []
        for name, items in [("lost (acknowledged but missing)", self.lost),
                            ("duplicated Message-IDs", self.duplicated),
                            ("misdelivered (in another account)", self.misdelivered),
                            ("unknown messages", self.unknown),
                            ("Subject does not match the Message-ID", self.subject_mismatch),
                            ("UIDs not strictly increasing", self.uid_order),
                            ("UIDVALIDITY changed or differs between nodes", self.uidvalidity),
                            ("nodes disagree on an INBOX", self.divergent),
                            ("EXISTS differs from the messages FETCHed", self.count_mismatch)]:
            if items:
                shown = "; ".join(items[:10]) + (f"; ... ({len(items)} in all)"
                                                  if len(items) > 10 else "")
                out.append(f"{name}: {len(items)}: {shown}")
        if self.acked_during_faults == 0:
            out.append("no message was acknowledged while a fault was active")
        return out

    def table(self) -> str:
        def yes(items: list) -> str:
            return "yes" if not items else f"NO ({len(items)})"
        rows = [
            ("sent", self.sent, ""),
            ("acknowledged", self.acked, ""),
            ("  of which while a fault was active", self.acked_during_faults, "MUST be > 0"),
            ("  acknowledged after a retry", self.retried_acked,
             f"retries (same bytes): {self.retries}"),
            ("never acknowledged (load stopped)", self.unacked, ""),
            ("lost (acknowledged, missing)", len(self.lost), "MUST be 0"),
            ("duplicated (Message-ID > once)", len(self.duplicated), "MUST be 0"),
            ("never acknowledged but present", self.unacked_present, "allowed, at most once"),
            ("misdelivered / unknown", f"{len(self.misdelivered)} / {len(self.unknown)}",
             "MUST be 0 / 0"),
            ("Subject matches Message-ID", yes(self.subject_mismatch), ""),
            ("UIDs strictly increasing", yes(self.uid_order), ""),
            ("UIDVALIDITY same + unchanged", yes(self.uidvalidity), ""),
            ("every node sees the same set", yes(self.divergent + self.count_mismatch), ""),
            ("UID vs. real-time order inversions", self.realtime_inversions, "info only"),
        ]
        head = (f"jepsen: {self.nodes} nodes, {self.partitions} partitions, {self.rounds} fault "
                f"rounds (seed {self.seed}), {len(self.accounts)} accounts, {self.senders} "
                f"senders, {self.duration:.0f}s")
        kinds = {k: sum(f.kind == k for f in self.faults) for k in FAULT_KINDS}
        lines = [head, f"faults: {len(self.faults)} (" +
                 ", ".join(f"{k} {v}" for k, v in kinds.items()) + ")"]
        if len(self.faults) <= 12:
            lines += [f"  {k + 1}. {f.describe()}" for k, f in enumerate(self.faults)]
        else:
            slowest = max(self.faults, key=lambda f: (f.recovered or f.end) - f.end)
            lines.append(f"  slowest recovery: {slowest.describe()}")
            lines += [f"  round {k + 1}: {f.describe()}" for k, f in enumerate(self.faults)
                      if f.kind == "wipe"]
        gone = f" (removed after a wipe: {', '.join(map(str, self.removed))})" if self.removed \
            else ""
        lines.append(f"  nodes checked: {', '.join(map(str, self.members))}{gone}")
        lines += [f"  {name:<38}{str(value):>10}   {note}" for name, value, note in rows]
        lines.append("  messages per node: " + ", ".join(f"node {n}: {k}" for n, k in
                                                        sorted(self.per_node.items())))
        if self.errors:
            top = sorted(self.errors.items(), key=lambda kv: -kv[1])[:6]
            lines.append("  send errors: " + "; ".join(f"{k} x{v}" for k, v in top))
        lines += [f"  FAIL {f}" for f in self.failures()]
        lines.append("  RESULT: " + ("FAIL" if self.failures() else "ok"))
        return "\n".join(lines)


def check(cluster: Cluster, run: Run, baseline: dict[str, dict[int, int | None]],
          rounds: int, duration: float) -> Report:
    """Reads every INBOX on every current member and compares it with what was sent."""
    nodes = list(cluster.members)
    r = Report(nodes=len(nodes), partitions=int(cluster.info.get("partitions", 0)),
               rounds=rounds, seed=run.seed, senders=run.senders, accounts=run.accounts,
               faults=run.faults, members=nodes, duration=duration,
               removed=[f.node for f in run.faults if f.kind == "wipe" and f.replacement])
    by_mid = {s.mid: s for s in run.sends}
    r.sent = len(run.sends)
    r.acked = sum(s.acked for s in run.sends)
    r.unacked = r.sent - r.acked
    r.retries = sum(max(0, s.attempts - 1) for s in run.sends)
    r.retried_acked = sum(1 for s in run.sends if s.acked and s.attempts > 1)
    windows = [(f.start, f.end or f.start) for f in run.faults]
    r.acked_during_faults = sum(1 for s in run.sends if s.acked and
                                any(a <= s.end <= b for a, b in windows))
    for s in run.sends:
        for error in s.errors or ([s.error] if s.error else []):
            kind = re.sub(r"\d+", "N", error[:60])
            r.errors[kind] = r.errors.get(kind, 0) + 1

    seen: dict[int, dict[str, Inbox]] = {n: {} for n in nodes}
    for n in nodes:
        for account in run.accounts:
            seen[n][account] = read_inbox_on(cluster, n, account)
        r.per_node[n] = sum(len(box.messages) for box in seen[n].values())

    present_anywhere: set[str] = set()
    for account in run.accounts:
        base = baseline[account]
        values = {n: seen[n][account].uidvalidity for n in nodes}
        if len(set(base.values())) != 1 or None in base.values():
            r.uidvalidity.append(f"{account}: before the faults {base}")
        if set(values.values()) != set(base.values()) or len(set(values.values())) != 1:
            r.uidvalidity.append(f"{account}: before {base}, after {values}")
        lists = {}
        for n in nodes:
            box = seen[n][account]
            if box.exists != len(box.messages):
                r.count_mismatch.append(f"node {n} {account}: EXISTS {box.exists}, FETCH "
                                        f"{len(box.messages)}")
            uids = [m.uid for m in box.messages]
            bad = [(a, b) for a, b in zip(uids, uids[1:]) if b <= a]
            if bad:
                r.uid_order.append(f"node {n} {account}: {bad[:5]}")
            counts: dict[str, int] = {}
            for m in box.messages:
                if m.mid is None:
                    r.unknown.append(f"node {n} {account} UID {m.uid}: no Message-ID")
                    continue
                counts[m.mid] = counts.get(m.mid, 0) + 1
                s = by_mid.get(m.mid)
                if s is None:
                    r.unknown.append(f"node {n} {account} UID {m.uid}: {m.mid}")
                    continue
                present_anywhere.add(m.mid)
                if s.account != account:
                    r.misdelivered.append(f"node {n}: {m.mid} for {s.account} in {account}")
                if m.subject != s.subject:
                    r.subject_mismatch.append(f"node {n} {account} {m.mid}: {m.subject!r}")
            for mid, k in counts.items():
                if k > 1:
                    r.duplicated.append(f"node {n} {account}: {mid} x{k}")
            lists[n] = [(m.uid, m.mid) for m in box.messages]
            # Real-time order (information): a message acknowledged before another was sent
            # should have the lower UID.
            uid_of = {m.mid: m.uid for m in box.messages if m.mid in by_mid}
            acked = sorted((by_mid[mid] for mid in uid_of if by_mid[mid].acked),
                           key=lambda s: s.start)
            if n == nodes[0]:
                for a, b in zip(acked, acked[1:]):
                    if a.end < b.start and uid_of[a.mid] > uid_of[b.mid]:
                        r.realtime_inversions += 1
        first = lists[nodes[0]]
        for n in nodes[1:]:
            if lists[n] != first:
                only_a = sorted(set(first) - set(lists[n]))[:3]
                only_b = sorted(set(lists[n]) - set(first))[:3]
                r.divergent.append(f"{account}: node {nodes[0]} vs node {n}: "
                                   f"{len(first)} vs {len(lists[n])} messages, only on "
                                   f"{nodes[0]}: {only_a}, only on {n}: {only_b}")

    mids = {(n, a): {m.mid for m in seen[n][a].messages} for n in nodes for a in run.accounts}
    for s in run.sends:
        if s.acked:
            missing = [n for n in nodes if s.mid not in mids[(n, s.account)]]
            if missing:
                r.lost.append(f"{s.mid} to {s.account} (acknowledged at "
                              f"+{s.end - run.sends[0].start:.1f}s) missing on node(s) "
                              f"{missing}")
    r.unacked_present = sum(1 for mid in present_anywhere if not by_mid[mid].acked)
    return r


# --- the whole scenario --------------------------------------------------------------------------

def setup(cluster: Cluster, accounts: int) -> list[str]:
    """A domain and `accounts` accounts, created through the CLI on different nodes."""
    cluster.cli(1, "domain", "add", DOMAIN)
    names = [f"user{k}@{DOMAIN}" for k in range(1, accounts + 1)]
    members = cluster.members
    for k, name in enumerate(names):
        cluster.cli(members[k % len(members)], "account", "add", name, "--password", PASSWORD)
    return names


def uidvalidities(cluster: Cluster, accounts: list[str]) -> dict[str, dict[int, int | None]]:
    """Account → member → its INBOX's UIDVALIDITY, read on every member directly."""
    out: dict[str, dict[int, int | None]] = {}
    for account in accounts:
        out[account] = {}
        for n in cluster.members:
            # A freshly created account reaches the followers when they apply the meta entry.
            out[account][n] = read_inbox_on(cluster, n, account).uidvalidity
    return out


def run(cluster: Cluster, rounds: int = 6, senders: int = 3, accounts: int = 4,
        seed: int | None = None, hold: tuple[float, float] = (1.0, 3.0), interval: float = 0.0,
        log: Callable[[str], None] = print, kinds: tuple[str, ...] = FAULT_KINDS) -> Report:
    """The whole scenario on an up cluster; returns the report (the caller asserts). `kinds`:
    the faults to draw from; "wipe" needs a spare slot (`up(..., spare=1)`)."""
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise ValueError(f"fault kinds {unknown or '(none)'}: choose among {FAULT_KINDS}")
    if set(kinds) == {"wipe"} and rounds > 1:
        raise ValueError("at most one wipe a run: with kinds (\"wipe\",), rounds must be 1")
    if "wipe" in kinds and not cluster.spares:
        raise ClusterError("the wipe fault joins a replacement node: bring the cluster up with a "
                           "spare slot (up(..., spare=1)), or leave \"wipe\" out of `kinds`")
    seed = random.randrange(1 << 30) if seed is None else seed
    t0 = time.monotonic()
    names = setup(cluster, accounts)
    cluster.wait_converged(SETTLE_TIMEOUT)
    baseline = uidvalidities(cluster, names)
    log(f"jepsen: seed {seed}; {rounds} rounds of {'/'.join(kinds)} on nodes {cluster.members}; "
        f"accounts {names}")
    r = Run(cluster, names, senders, seed, log, interval, tuple(kinds))
    r.go(rounds, hold)
    log(f"jepsen: load stopped after {len(r.sends)} sends; healing and waiting for convergence")
    if r.nemesis_error is not None:
        raise AssertionError(f"the nemesis failed: {r.nemesis_error}") from r.nemesis_error
    try:
        r.recover()
    except ClusterError as e:
        raise AssertionError(f"the cluster did not recover after the faults: {e}") from e
    log("jepsen: whole-cluster restart (SIGKILL every node, start them again)")
    try:
        r.restart_all()
    except ClusterError as e:
        raise AssertionError(f"the cluster did not come back after a whole restart: {e}") from e
    return check(cluster, r, baseline, rounds, time.monotonic() - t0)
