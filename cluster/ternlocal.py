"""A local Tern cluster on one machine: N `tern serve` processes on 127.0.0.2..127.0.0.(N+1), the
node-link proxy (cluster/linkproxy.py) for partitions, and HAProxy on 127.0.0.1 in front.

The command-line tool is cluster/tern-local; tests use the `Cluster` class:

    import ternlocal
    with ternlocal.Cluster(tmp_path / "cluster") as c:      # down() on exit, always
        c.up(3, partitions=8)
        smtp = smtplib.SMTP(*c.ports["smtp"])                # through HAProxy
        c.kill(2); c.restart(2); c.wait_all_ready()
        c.partition(3); ...; c.heal()

Layout of the state dir (--dir, default $TERN_LOCAL_DIR or /tmp/tern-local):
    cluster.json          ports, node addresses, admin URLs, data dirs, pids (for users and tests)
    state                 the process table (pid + start time of every daemon); removed by down
    certs/                the cluster CA and node-<i>.pem/.key
    node<i>/node.toml     node i's config; node<i>/data its data dir; node<i>/log its output
    linkproxy.json        the link proxy's config; partitions.json + linkproxy.ack its control
    haproxy.cfg           deploy/haproxy.cfg rendered for N nodes; haproxy.log its output

Ports: one range of ten from a base port B. P0..P6 = B..B+6 are the client ports (smtp,
submission, submissions, imap, imaps, pop3, pop3s), the same numbers on HAProxy (127.0.0.1) and on
every node; P7 = B+7 is each node's admin API, P8 = B+8 its real node link, P9 = B+9 the link
proxy in front of it (the address peers dial).

`Cluster(direct_links=True)` (tern-local up --direct-links) starts no link proxy: peers dial each
other's real node link, as in production. Benchmarks use it, so that a Python proxy on the same two
cores does not sit in every Raft round trip; `partition` and `heal` are refused then.

Every wait has a deadline; nothing sleeps blindly. Python 3.11 standard library only.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HAPROXY_TEMPLATE = REPO / "deploy" / "haproxy.cfg"
LINKPROXY = HERE / "linkproxy.py"
ENSURE_APT = REPO / "scripts" / "ensure-apt"

DEFAULT_DIR = "/tmp/tern-local"
PROTOCOLS = ["smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s"]
ADMIN, LINK, LINK_PROXY = 7, 8, 9          # offsets from the base port
PORT_SPAN = 10
PORT_RANGE = (20000, 32000)                # below the ephemeral range, like tests/ternlib.py
HAPROXY_IP = "127.0.0.1"
PROXY_SOURCE = "127.0.0.254"               # HAProxy's source address towards the nodes
MAX_NODES = 250

START_TIMEOUT = 30.0       # a node answers /health/live
READY_TIMEOUT = 60.0       # the whole cluster is ready after `up`
STOP_TIMEOUT = 20.0        # SIGTERM → exit, then SIGKILL
CONTROL_TIMEOUT = 5.0      # the link proxy acknowledges a partition change
CLI_TIMEOUT = 60.0
SESSION_DRAIN = 60.0      # a node taken out of HAProxy's rotation sees its sessions end


class ClusterError(Exception):
    """A harness action failed; the message says what and, where it helps, shows a log."""


# --- small helpers -------------------------------------------------------------------------------

def node_ip(i: int) -> str:
    return f"127.0.0.{1 + i}"


def default_bin() -> str:
    """$TERN_BIN, else $CARGO_TARGET_DIR/release/tern, else /var/tmp/tern-target/release/tern if
    it exists, else cargo metadata's target dir + release/tern."""
    if os.environ.get("TERN_BIN"):
        return os.environ["TERN_BIN"]
    if os.environ.get("CARGO_TARGET_DIR"):
        return str(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "tern")
    ci = Path("/var/tmp/tern-target/release/tern")
    if ci.exists():
        return str(ci)
    try:
        out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                             cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
        return str(Path(json.loads(out.stdout)["target_directory"]) / "release" / "tern")
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return str(REPO / "target" / "release" / "tern")


def unavailable() -> str | None:
    """Why a real cluster cannot run here (for a test's skip reason), or None when it can: the
    tern binary must have `tern cluster`, and HAProxy must be installed."""
    path = default_bin()
    if not Path(path).exists() or subprocess.run([path, "cluster", "--help"],
                                                 capture_output=True).returncode != 0:
        return f"needs a tern with `tern cluster` ({path})"
    if not (shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")):
        return "needs haproxy"
    return None


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise ClusterError(f"{path} is not valid JSON: {e}") from e


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(f"    {line}" for line in text[-lines:]) or "    (empty log)"


def ports_free(base: int, ips: list[str]) -> bool:
    """Whether base..base+9 can be bound on every address (with SO_REUSEADDR, as servers do)."""
    for port in range(base, base + PORT_SPAN):
        for ip in ips:
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((ip, port))
                except OSError:
                    return False
    return True


def pick_base_port(n: int, attempts: int = 300) -> int:
    ips = [HAPROXY_IP, PROXY_SOURCE] + [node_ip(i) for i in range(1, n + 1)]
    bases = list(range(PORT_RANGE[0], PORT_RANGE[1] - PORT_SPAN, PORT_SPAN))
    for base in random.sample(bases, min(attempts, len(bases))):
        if ports_free(base, ips):
            return base
    raise ClusterError(f"no free range of {PORT_SPAN} ports in {PORT_RANGE} on {', '.join(ips)}")


# --- processes -----------------------------------------------------------------------------------
# A daemon is {"pid": int, "start": int}: the start time (clock ticks since boot, /proc/PID/stat
# field 22) tells our process from a later one that reused the pid.

def _stat(pid: int) -> tuple[str, int] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()   # the command name may contain spaces
    return fields[0], int(fields[19])


def _live_threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def proc_state(proc: dict | None) -> str | None:
    """'running', 'paused' (stopped by a signal), 'exiting' (killed, but some threads still hold
    its files and sockets) or None (gone, a zombie, or another process)."""
    if not proc or not proc.get("pid"):
        return None
    stat = _stat(proc["pid"])
    if stat is None or stat[1] != proc.get("start"):
        return None
    if stat[0] in ("Z", "X"):
        # The main thread of a killed process turns zombie first; its ports stay bound until
        # the last thread (one stuck in an fsync, say) has exited too.
        if _live_threads(proc["pid"]) > 1:
            return "exiting"
        _reap(proc["pid"])
        return None
    return "paused" if stat[0] in ("T", "t") else "running"


def spawn(cmd: list[str], log_path: Path, env: dict | None = None) -> dict:
    """Starts a daemon in its own session, output appended to `log_path`."""
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             env=env, start_new_session=True)
    stat = _stat(p.pid)
    # Popen keeps a reference in subprocess._active and reaps it eventually; we reap in _reap too.
    return {"pid": p.pid, "start": stat[1] if stat else None}


def signal_proc(proc: dict | None, sig: int) -> bool:
    if proc_state(proc) is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc["pid"], sig)
        return True
    return False


def wait_gone(procs: list[dict], timeout: float) -> list[dict]:
    """Waits until every process is gone; returns the ones still there at the deadline."""
    deadline = time.monotonic() + timeout
    left = [p for p in procs if proc_state(p) is not None]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if proc_state(p) is not None]
    return left


def stop_procs(procs: list[dict], timeout: float = STOP_TIMEOUT) -> None:
    """SIGCONT (a stopped process cannot act on SIGTERM), SIGTERM, deadline, then SIGKILL."""
    for p in procs:
        signal_proc(p, signal.SIGCONT)
        signal_proc(p, signal.SIGTERM)
    for p in wait_gone(procs, timeout):
        signal_proc(p, signal.SIGKILL)
    wait_gone(procs, 5.0)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError):
        return None


# --- HAProxy -------------------------------------------------------------------------------------

BEGIN_MARK = re.compile(r"^\s*#\s*BEGIN tern-nodes\s*$")
END_MARK = re.compile(r"^\s*#\s*END tern-nodes\s*$")


def render_haproxy(template: str, n: int, proxy_protocol: bool = True) -> str:
    """deploy/haproxy.cfg with the server block between the marker comments replaced by n lines of
    the same form as its first server line (node1 → node<i>, TERN_NODE1_ → TERN_NODE<i>_)."""
    lines = template.splitlines()
    begin = next((k for k, line in enumerate(lines) if BEGIN_MARK.match(line)), None)
    end = next((k for k, line in enumerate(lines) if END_MARK.match(line)), None)
    if begin is None or end is None or end < begin:
        raise ClusterError(f"{HAPROXY_TEMPLATE}: missing the '# BEGIN tern-nodes' and "
                           "'# END tern-nodes' markers")
    pattern = next((line for line in lines[begin + 1:end] if line.strip().startswith("server ")),
                   None)
    if pattern is None or "node1" not in pattern or "TERN_NODE1_" not in pattern:
        raise ClusterError(f"{HAPROXY_TEMPLATE}: the first line of the server block must be "
                           "`server node1 \"${TERN_NODE1_HOST}\" ...`")
    servers = [re.sub(r"\bnode1\b", f"node{i}", pattern).replace("TERN_NODE1_", f"TERN_NODE{i}_")
               for i in range(1, n + 1)]
    out = lines[:begin + 1] + servers + lines[end:]
    text = "\n".join(out) + "\n"
    if not proxy_protocol:
        text = re.sub(r"[ \t]+send-proxy-v2\b", "", text)
    header = ("# Rendered by cluster/tern-local from deploy/haproxy.cfg for "
              f"{n} node(s); edit the template, not this copy.\n")
    return header + text


def haproxy_command(sock_path: str, command: str, timeout: float = 2.0) -> str:
    """One command on HAProxy's runtime API; its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _haproxy_servers(sock_path: str, timeout: float) -> list[dict[str, str]]:
    text = haproxy_command(sock_path, "show stat", timeout).lstrip("# ")
    return [r for r in csv.DictReader(io.StringIO(text))
            if r.get("pxname") == "tern" and r.get("svname") not in ("BACKEND", "FRONTEND")]


def haproxy_stats(sock_path: str, timeout: float = 2.0) -> dict[str, str]:
    """Server name → status ("UP", "DOWN", "MAINT", ...) in backend `tern`, via the runtime API."""
    return {r["svname"]: r["status"] for r in _haproxy_servers(sock_path, timeout)}


def haproxy_sessions(sock_path: str, timeout: float = 2.0) -> dict[str, int]:
    """Server name → client connections it carries now, in backend `tern`."""
    return {r["svname"]: int(r.get("scur") or 0) for r in _haproxy_servers(sock_path, timeout)}


# --- the link proxy (cluster/linkproxy.py) -------------------------------------------------------
# Its control file DIR/partitions.json holds {"generation", "partitioned"}; on SIGHUP the proxy
# applies it, closes the connections it cuts, then writes the generation to DIR/linkproxy.ack.

def start_linkproxy(dir: Path, nodes: dict[int, tuple[str, int, int]],
                    on_spawn: Callable[[dict], None] | None = None,
                    timeout: float = 2 * CONTROL_TIMEOUT) -> dict:
    """Starts the link proxy for nodes {id: (ip, proxy port, real link port)} with state in
    `dir`; returns its process once it listens on every proxy port."""
    config = {
        "nodes": {str(i): {"ip": ip, "listen": listen, "target": target}
                  for i, (ip, listen, target) in nodes.items()},
        "control": str(dir / "partitions.json"),
        "ack": str(dir / "linkproxy.ack"),
    }
    write_atomic(dir / "linkproxy.json", json.dumps(config, indent=2) + "\n")
    write_atomic(dir / "partitions.json", json.dumps({"generation": 0, "partitioned": []}) + "\n")
    with contextlib.suppress(FileNotFoundError):
        (dir / "linkproxy.ack").unlink()
    proc = spawn([sys.executable, str(LINKPROXY), "--config", str(dir / "linkproxy.json")],
                 dir / "linkproxy.log")
    if on_spawn:
        on_spawn(proc)
    wait_linkproxy(dir, proc, 0, timeout)
    return proc


def wait_linkproxy(dir: Path, proc: dict, generation: int, timeout: float = CONTROL_TIMEOUT):
    """Waits until the link proxy acknowledges `generation` of the control file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ClusterError):
            ack = read_json(dir / "linkproxy.ack")
            if ack and ack.get("pid") == proc["pid"] and ack.get("generation", -1) >= generation:
                return
        if proc_state(proc) is None:
            raise ClusterError(f"the link proxy is not running; {dir / 'linkproxy.log'}:\n"
                               f"{tail(dir / 'linkproxy.log')}")
        time.sleep(0.02)
    raise ClusterError(f"the link proxy (pid {proc['pid']}) did not apply generation "
                       f"{generation} within {timeout:.0f}s; see {dir / 'linkproxy.log'}")


def partitioned_nodes(dir: Path) -> set[int]:
    control = read_json(dir / "partitions.json") or {}
    return {int(i) for i in control.get("partitioned", [])}


def deaf_nodes(dir: Path) -> set[int]:
    control = read_json(dir / "partitions.json") or {}
    return {int(i) for i in control.get("deaf", [])}


def set_partitioned(dir: Path, proc: dict, nodes: set[int], deaf: set[int] | None = None) -> None:
    """Makes `nodes` the partitioned set and `deaf` (default: unchanged) the nodes whose replies
    are dropped; returns once the proxy has applied it (refusing new connections to and from the
    partitioned nodes and having closed the open ones)."""
    control = read_json(dir / "partitions.json") or {}
    generation = int(control.get("generation", 0)) + 1
    deaf = {int(i) for i in control.get("deaf", [])} if deaf is None else deaf
    write_atomic(dir / "partitions.json",
                 json.dumps({"generation": generation, "partitioned": sorted(nodes),
                             "deaf": sorted(deaf)}) + "\n")
    if not signal_proc(proc, signal.SIGHUP):
        raise ClusterError(f"the link proxy (pid {proc.get('pid')}) is not running")
    wait_linkproxy(dir, proc, generation)


def group_leaders(status: dict) -> dict:
    """Group → the leader's view of it ({"leader", "voters", ...}) or None without a leader, from
    `tern cluster status --json`: either {"groups": [...]} or {"members": [{"id", "groups": [...]}]}
    where each member reports its own view and a leader counts only if its own view agrees."""
    if "groups" in status:
        return {g.get("group", k): (g if g.get("leader") else None)
                for k, g in enumerate(status["groups"])}
    views: dict = {}
    for member in status.get("members", []):
        for k, view in enumerate(member.get("groups") or []):
            g = view.get("group", k)
            g = g if isinstance(g, int) else k
            views.setdefault(g, {})[member.get("id")] = view
    result = {}
    for g, by_member in views.items():
        result[g] = None
        for view in by_member.values():
            leader = view.get("leader")
            own = by_member.get(leader)
            if leader and own and own.get("leader") == leader:
                result[g] = own
                break
    return result


# --- the cluster ---------------------------------------------------------------------------------

class Cluster:
    """A local cluster in `dir`. Loads cluster.json if a cluster was brought up there, so separate
    invocations (the CLI's kill, status, ...) act on the same processes."""

    def __init__(self, dir: str | os.PathLike | None = None, bin: str | None = None,
                 base_port: int | None = None, log: Callable[[str], None] | None = None,
                 extra_config: str = "", direct_links: bool = False):
        self.dir = Path(dir or os.environ.get("TERN_LOCAL_DIR") or DEFAULT_DIR).resolve()
        # TOML appended to every node's config by `up` (`[dns]`, `[relay]`, `[filter]`, ...).
        self.extra_config = extra_config
        # No link proxy: nodes advertise their real link (no partitions, no proxy hop).
        self.direct_links_option = direct_links
        self._bin_option = bin
        self._bin = bin
        self.base_port_option = base_port
        self.log = log or (lambda message: None)
        self.info: dict = read_json(self.dir / "cluster.json") or {}

    # -- paths and addresses

    @property
    def bin(self) -> str:
        if self._bin is None:
            self._bin = self.info.get("bin") or default_bin()
        return self._bin

    @property
    def n(self) -> int:
        """Node slots: the members, the spares not yet joined, and the nodes drained away."""
        return int(self.info.get("n", 0))

    @property
    def members(self) -> list[int]:
        """The nodes in the cluster (started and joined, not drained away)."""
        return list(self.info.get("members", range(1, self.n + 1)))

    @property
    def spares(self) -> list[int]:
        """The node slots prepared by `up(spare=K)` and not joined yet (`join` takes the first)."""
        used = set(self.members) | set(self.info.get("drained", []))
        return [i for i in range(1, self.n + 1) if i not in used]

    @property
    def base(self) -> int:
        if not self.info:
            raise ClusterError(f"no cluster in {self.dir} (no cluster.json): run `tern-local up N`")
        return int(self.info["base_port"])

    @property
    def ports(self) -> dict[str, tuple[str, int]]:
        """Protocol → (host, port) on HAProxy."""
        return {p: (HAPROXY_IP, self.base + k) for k, p in enumerate(PROTOCOLS)}

    @property
    def direct_links(self) -> bool:
        return bool(self.info.get("direct_links", self.direct_links_option))

    @property
    def _advertise_offset(self) -> int:
        return LINK if self.direct_links else LINK_PROXY

    def node_addr(self, i: int, protocol: str) -> tuple[str, int]:
        """(ip, port) of node i's listener: a client protocol, 'admin', 'link' (the real node link)
        or 'advertise' (the link proxy in front of it)."""
        self._check_node(i)
        offsets = {p: k for k, p in enumerate(PROTOCOLS)}
        offsets.update(admin=ADMIN, link=LINK, advertise=self._advertise_offset)
        if protocol not in offsets:
            raise ValueError(f"unknown protocol {protocol!r}: one of {', '.join(offsets)}")
        return node_ip(i), self.base + offsets[protocol]

    def admin_url(self, i: int) -> str:
        ip, port = self.node_addr(i, "admin")
        return f"http://{ip}:{port}"

    def node_dir(self, i: int) -> Path:
        return self.dir / f"node{i}"

    def data_dir(self, i: int) -> Path:
        return self.node_dir(i) / "data"

    def log_path(self, i: int) -> Path:
        return self.node_dir(i) / "log"

    def _check_node(self, i: int) -> None:
        if not self.info:
            raise ClusterError(f"no cluster in {self.dir} (no cluster.json): run `tern-local up N`")
        if not isinstance(i, int) or not 1 <= i <= self.n:
            raise ClusterError(f"no node {i}: the cluster in {self.dir} has nodes 1..{self.n}")

    @property
    def _haproxy_socket(self) -> str:
        path = str(self.dir / "haproxy.sock")
        if len(path) < 100:    # sun_path holds 108 bytes
            return path
        return f"/tmp/tern-haproxy-{hashlib.sha1(path.encode()).hexdigest()[:12]}.sock"

    # -- the process table (DIR/state)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _state(self) -> dict:
        state = read_json(self.dir / "state") or {}
        state.setdefault("nodes", {})
        return state

    def _save_state(self, state: dict) -> None:
        write_atomic(self.dir / "state", json.dumps(state, indent=2) + "\n")
        if self.info:
            self.info["pids"] = {
                "nodes": {k: v.get("pid") for k, v in state.get("nodes", {}).items()},
                "linkproxy": (state.get("linkproxy") or {}).get("pid"),
                "haproxy": (state.get("haproxy") or {}).get("pid"),
            }
            for node in self.info.get("nodes", []):
                node["pid"] = (state["nodes"].get(str(node["id"])) or {}).get("pid")
            write_atomic(self.dir / "cluster.json", json.dumps(self.info, indent=2) + "\n")

    def _node_proc(self, i: int) -> dict | None:
        return self._state()["nodes"].get(str(i))

    def node_state(self, i: int) -> str:
        """'running', 'paused' or 'killed' (not running: killed, crashed or never started)."""
        return proc_state(self._node_proc(i)) or "killed"

    # -- running tern

    def _env(self) -> dict:
        env = dict(os.environ)
        for key in ("TERN_ADMIN", "TERN_DATA", "TERN_ADMIN_TOKEN"):
            env.pop(key, None)   # the CLI must use the node we name, with that node's token
        env.setdefault("RUST_LOG", "info,openraft=warn")
        return env

    def _run(self, args: list[str], what: str, timeout: float = CLI_TIMEOUT) -> str:
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                  env=self._env())
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"{what}: no answer after {timeout:.0f}s ({' '.join(args)})") from e
        except OSError as e:
            raise ClusterError(f"{what}: cannot run {args[0]}: {e}") from e
        if done.returncode != 0:
            raise ClusterError(f"{what} failed (exit {done.returncode}): {' '.join(args)}\n"
                               f"{done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def cli(self, i: int, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        """Runs `tern --admin <node i> --data <node i's data> ARGS...`; returns stdout, raises
        ClusterError with stderr on failure."""
        self._check_node(i)
        cmd = [self.bin, "--admin", self.admin_url(i), "--data", str(self.data_dir(i)), *args]
        return self._run(cmd, f"node {i}: tern {' '.join(args)}", timeout)

    def admin_get(self, i: int, path: str, timeout: float = 10.0):
        """GET `path` on node i's admin API with its bearer token; returns the decoded JSON."""
        self._check_node(i)
        token = (self.data_dir(i) / "admin.token").read_text().strip()
        req = urllib.request.Request(self.admin_url(i) + path,
                                     headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace").strip()
            raise ClusterError(f"node {i}: GET {path}: HTTP {e.code} {body}") from e
        except OSError as e:
            raise ClusterError(f"node {i}: GET {path}: {e}") from e

    def _features(self) -> dict:
        try:
            example = subprocess.run([self.bin, "config", "example"], capture_output=True,
                                     text=True, timeout=30).stdout
            has_cluster = subprocess.run([self.bin, "cluster", "--help"], capture_output=True,
                                         timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError) as e:
            raise ClusterError(f"cannot run the tern binary {self.bin}: {e}") from e
        return {"proxy_protocol": "proxy_protocol_from" in example,
                "cluster": has_cluster and re.search(r"^\s*listen\s*=", example, re.M) is not None}

    def _node_config(self, i: int, proxy_protocol: bool) -> str:
        q = json.dumps   # a JSON string is a valid TOML basic string
        ip = node_ip(i)
        certs = self.dir / "certs"
        lines = ["[server]",
                 f"hostname = {q(f'node{i}.tern.test')}",
                 f"data_dir = {q(str(self.data_dir(i)))}",
                 "allow_plaintext_auth_on_loopback = true",
                 "",
                 "[listeners]"]
        lines += [f"{p} = {q(f'{ip}:{self.base + k}')}" for k, p in enumerate(PROTOCOLS)]
        lines.append(f"admin = {q(f'{ip}:{self.base + ADMIN}')}")
        if proxy_protocol:
            lines.append(f"proxy_protocol_from = [{q(PROXY_SOURCE + '/32')}]")
        lines += ["",
                  "[cluster]",
                  f"node_id = {i}",
                  f"listen = {q(f'{ip}:{self.base + LINK}')}",
                  f"advertise = {q(f'{ip}:{self.base + self._advertise_offset}')}",
                  f"seeds = [{q(f'{node_ip(1)}:{self.base + self._advertise_offset}')}]",
                  f"ca = {q(str(certs / 'ca.pem'))}",
                  f"cert = {q(str(certs / f'node-{i}.pem'))}",
                  f"key = {q(str(certs / f'node-{i}.key'))}"]
        if self.extra_config:
            lines += ["", self.extra_config.strip("\n")]
        return "\n".join(lines) + "\n"

    def _start_node(self, i: int) -> dict:
        proc = spawn([self.bin, "serve", "--config", str(self.node_dir(i) / "node.toml")],
                     self.log_path(i), self._env())
        state = self._state()
        state["nodes"][str(i)] = proc
        self._save_state(state)
        return proc

    def _wait_http(self, i: int, path: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        url = self.admin_url(i) + path
        last = None
        while time.monotonic() < deadline:
            state = self.node_state(i)
            if state == "killed":
                raise ClusterError(f"node {i} is not running (exited or killed) while waiting for "
                                   f"{what}; its log {self.log_path(i)}:\n{tail(self.log_path(i))}")
            if state == "running":
                last = http_status(url, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
                if last == 200:
                    return
            time.sleep(0.1)
        paused = " (it is paused)" if self.node_state(i) == "paused" else ""
        raise ClusterError(f"node {i}{paused}: {what} not reached after {timeout:.0f}s "
                           f"(last {path}: {last or 'no answer'}); its log {self.log_path(i)}:\n"
                           f"{tail(self.log_path(i))}")

    def wait_live(self, i: int, deadline: float = START_TIMEOUT) -> None:
        """Waits (at most `deadline` seconds) until node i answers /health/live."""
        self._check_node(i)
        self._wait_http(i, "/health/live", deadline, "/health/live")

    def wait_ready(self, i: int, deadline: float = READY_TIMEOUT) -> None:
        """Waits (at most `deadline` seconds) until node i answers /health/ready with 200: it is in
        the cluster and reaches a quorum."""
        self._check_node(i)
        self._wait_http(i, "/health/ready", deadline, "/health/ready")

    def cluster_status(self, i: int | None = None) -> dict:
        """`tern cluster status --json` from node i (default: the first running node)."""
        if i is None:
            i = next((k for k in self.members if self.node_state(k) == "running"), None)
            if i is None:
                raise ClusterError("no node is running")
        out = self.cli(i, "cluster", "status", "--json", timeout=10)
        try:
            return json.loads(out)
        except ValueError as e:
            raise ClusterError(f"node {i}: `cluster status --json` is not JSON: "
                               f"{out[:200]!r}") from e

    def digests(self, i: int) -> dict[int, tuple[int, str]]:
        """Group → (applied index, state digest) on node i (GET /v1/cluster/digests)."""
        answer = self.admin_get(i, "/v1/cluster/digests")
        return {int(g["group"]): (int(g["applied"]), g["digest"]) for g in answer["groups"]}

    def wait_converged(self, deadline: float = READY_TIMEOUT,
                       nodes: list[int] | None = None) -> dict[int, str]:
        """Waits (at most `deadline` seconds) until the given nodes (default: every running one)
        report, for every group they hold, the same applied index and the same state digest;
        returns group → digest. The check that replicas agree byte for byte."""
        end = time.monotonic() + deadline
        last = "no answer"
        while time.monotonic() < end:
            chosen = nodes or [i for i in self.members if self.node_state(i) == "running"]
            try:
                views = {i: self.digests(i) for i in chosen}
            except ClusterError as e:
                last = str(e)
                time.sleep(0.2)
                continue
            groups: dict[int, dict[int, tuple[int, str]]] = {}
            for i, view in views.items():
                for g, value in view.items():
                    groups.setdefault(g, {})[i] = value
            differing = {g: v for g, v in groups.items() if len(set(v.values())) > 1}
            if groups and not differing:
                return {g: next(iter(v.values()))[1] for g, v in sorted(groups.items())}
            last = (f"group {min(differing)} differs: {differing[min(differing)]}" if differing
                    else "no groups")
            time.sleep(0.2)
        raise ClusterError(f"the replicas did not converge within {deadline:.0f}s: {last}")

    def _groups_settled(self, status: dict) -> str | None:
        """None when the cluster status shows all N nodes reachable and every group with a leader
        and min(3, N) voters, else what is missing."""
        want = min(3, len(self.members))
        nodes = status.get("members") or status.get("nodes") or []
        if len(nodes) != len(self.members):
            return f"{len(nodes)} member(s), want {len(self.members)}"
        unreachable = [m.get("id") for m in nodes if m.get("reachable") is False]
        if unreachable:
            return f"node(s) {unreachable} unreachable"
        groups = group_leaders(status)
        if not groups:
            return "no groups yet"
        for g, view in sorted(groups.items()):
            if view is None:
                return f"group {g} has no leader"
            voters = view.get("voters")
            count = len(voters) if isinstance(voters, (list, dict)) else int(voters or 0)
            if count < want:
                return f"group {g} has {count} voter(s), want {want}"
        return None

    def wait_all_ready(self, deadline: float = READY_TIMEOUT, haproxy: bool = True) -> None:
        """Waits (at most `deadline` seconds) until every node is ready, every Raft group has a
        leader and min(3, N) voters and, with `haproxy`, HAProxy has every node in rotation."""
        if not self.info:
            raise ClusterError(f"no cluster in {self.dir}")
        end = time.monotonic() + deadline
        for i in self.members:
            self._wait_http(i, "/health/ready", max(0.1, end - time.monotonic()), "/health/ready")
        last = "?"
        while time.monotonic() < end:
            try:
                last = self._groups_settled(self.cluster_status()) or ""
            except ClusterError as e:
                last = str(e)
            if last == "":
                break
            time.sleep(0.2)
        else:
            raise ClusterError(f"the Raft groups did not settle within {deadline:.0f}s: {last}")
        if not haproxy:
            return
        servers: dict = {}
        while time.monotonic() < end:
            with contextlib.suppress(OSError):
                servers = haproxy_stats(self._haproxy_socket)
                if all(servers.get(f"node{i}") == "UP" for i in self.members):
                    return
            if proc_state(self._state().get("haproxy")) is None:
                raise ClusterError(f"HAProxy is not running; its log:\n"
                                   f"{tail(self.dir / 'haproxy.log')}")
            time.sleep(0.1)
        raise ClusterError(f"HAProxy does not have every node up within {deadline:.0f}s: "
                           f"{servers or 'no answer on its stats socket'}")

    # -- up

    def _looks_like_ours(self) -> bool:
        entries = {p.name for p in self.dir.iterdir()} if self.dir.is_dir() else set()
        entries.discard(".lock")
        return not entries or "cluster.json" in entries or "state" in entries

    def _clear_dir(self) -> None:
        """Removes a previous (stopped) cluster's files from DIR, refusing a foreign directory."""
        if not self.dir.exists():
            return
        if not self._looks_like_ours():
            raise ClusterError(f"{self.dir} is not empty and is not a tern-local dir; "
                               "choose another --dir")
        for entry in self.dir.iterdir():
            if entry.name == ".lock":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def _ensure_haproxy(self) -> str:
        sbin = "/usr/sbin:/usr/local/sbin:/sbin"
        found = shutil.which("haproxy") or shutil.which("haproxy", path=sbin)
        if found:
            return found
        self.log("haproxy is not installed: installing it (scripts/ensure-apt haproxy)")
        try:
            subprocess.run([str(ENSURE_APT), "haproxy"], check=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            raise ClusterError(f"cannot install haproxy with {ENSURE_APT}: {e}") from e
        found = shutil.which("haproxy") or shutil.which("haproxy", path=sbin)
        if not found:
            raise ClusterError("haproxy is still not on PATH after installing it")
        return found

    def up(self, n: int = 3, partitions: int = 16, spare: int = 0) -> None:
        """Brings up n nodes, the link proxy and HAProxy, and waits until the cluster is ready.
        `spare` more nodes are prepared (certificates, config, link proxy and HAProxy entries)
        but not started: `join` adds them one by one. Refuses if a cluster is already running
        in DIR; removes a stopped one's files first."""
        if not 1 <= n or not n + spare <= MAX_NODES or spare < 0:
            raise ClusterError(f"N + spares must be 1..{MAX_NODES}, not {n} + {spare}")
        if partitions < 1:
            raise ClusterError(f"--partitions must be at least 1, not {partitions}")
        with self._locked():
            if self.dir.exists():
                running = [name for name, p in self._named_procs(self._state()) if proc_state(p)]
                if running:
                    raise ClusterError(f"a cluster is already up in {self.dir} "
                                       f"({', '.join(running)} running): run `tern-local down` "
                                       "first")
            self._clear_dir()
            self.info = {}
            self._bin = self._bin_option or default_bin()   # not the previous cluster's
            try:
                self._up(n, partitions, spare)
            except BaseException:
                self.log("up failed: stopping what was started (logs stay in place)")
                self._down(clean=False)
                raise

    def _up(self, first: int, partitions: int, spare: int) -> None:
        n = first + spare
        haproxy = self._ensure_haproxy()
        if not Path(self.bin).exists():
            raise ClusterError(f"tern binary not found at {self.bin}: build it with "
                               "`cargo build --release -p tern` or pass --bin / set TERN_BIN")
        features = self._features()
        if not features["cluster"]:
            raise ClusterError(f"{self.bin} has no `tern cluster` commands or [cluster] listen "
                               "setting yet: rebuild it (`cargo build --release -p tern`)")
        if not features["proxy_protocol"]:
            self.log("warning: this tern has no listeners.proxy_protocol_from yet; HAProxy will "
                     "connect without a PROXY header (nodes see 127.0.0.254 as the client)")
        base = self.base_port_option
        ips = [HAPROXY_IP, PROXY_SOURCE] + [node_ip(i) for i in range(1, n + 1)]
        if base is None:
            base = pick_base_port(n)
        elif not (1024 <= base <= 65535 - PORT_SPAN) or not ports_free(base, ips):
            raise ClusterError(f"ports {base}..{base + PORT_SPAN - 1} are not all free on "
                               f"{', '.join(ips)}")
        self.info = {
            "dir": str(self.dir), "bin": self.bin, "n": n, "partitions": partitions,
            "members": list(range(1, first + 1)),
            "base_port": base, "up": False, "direct_links": self.direct_links_option,
            "ports": {p: [HAPROXY_IP, base + k] for k, p in enumerate(PROTOCOLS)},
            "haproxy": {"config": str(self.dir / "haproxy.cfg"),
                        "log": str(self.dir / "haproxy.log"),
                        "socket": self._haproxy_socket,
                        "proxy_protocol": features["proxy_protocol"]},
            "linkproxy": {"config": str(self.dir / "linkproxy.json"),
                          "log": str(self.dir / "linkproxy.log")},
            "nodes": [{
                "id": i, "ip": node_ip(i),
                "admin": f"http://{node_ip(i)}:{base + ADMIN}",
                "link": f"{node_ip(i)}:{base + LINK}",
                "advertise": f"{node_ip(i)}:{base + self._advertise_offset}",
                "ports": {p: base + k for k, p in enumerate(PROTOCOLS)},
                "dir": str(self.node_dir(i)), "data": str(self.data_dir(i)),
                "config": str(self.node_dir(i) / "node.toml"), "log": str(self.log_path(i)),
                "pid": None,
            } for i in range(1, n + 1)],
        }
        self._save_state({"nodes": {}})
        self.log(f"cluster of {n} in {self.dir}, ports {base}..{base + PORT_SPAN - 1}")

        certs = self.dir / "certs"
        certs.mkdir()
        self._run([self.bin, "cluster", "ca", "--dir", str(certs)], "tern cluster ca")
        for i in range(1, n + 1):
            self._run([self.bin, "cluster", "cert", "--ca", str(certs), "--node", str(i),
                       "--addr", f"{node_ip(i)}:{base + self._advertise_offset}", "--out", str(certs)],
                      f"tern cluster cert --node {i}")
            self.node_dir(i).mkdir()
            self.data_dir(i).mkdir()
            (self.node_dir(i) / "node.toml").write_text(
                self._node_config(i, features["proxy_protocol"]))

        if not self.direct_links:
            self._start_linkproxy()

        self.log("starting node 1")
        self._start_node(1)
        self.wait_live(1)
        self.log(f"node 1: cluster init --partitions {partitions}")
        self._cli_with_log(1, "cluster", "init", "--partitions", str(partitions))
        for i in range(2, first + 1):
            self._start_node(i)
        for i in range(2, first + 1):
            self.wait_live(i)
            self.log(f"node {i}: cluster join")
            self._cli_with_log(i, "cluster", "join", "--seed",
                               f"{node_ip(1)}:{base + self._advertise_offset}")

        self._start_haproxy(haproxy, n, features["proxy_protocol"])
        self.log("waiting until every node is ready and every group has a leader")
        self.wait_all_ready(READY_TIMEOUT)
        self.info["up"] = True
        self._save_state(self._state())

    def _cli_with_log(self, i: int, *args: str) -> str:
        try:
            return self.cli(i, *args)
        except ClusterError as e:
            raise ClusterError(f"{e}\nnode {i}'s log {self.log_path(i)}:\n"
                               f"{tail(self.log_path(i))}") from e

    def _start_linkproxy(self) -> None:
        nodes = {i: (node_ip(i), self.base + LINK_PROXY, self.base + LINK)
                 for i in range(1, self.n + 1)}
        start_linkproxy(self.dir, nodes, on_spawn=self._record_linkproxy)

    def _record_linkproxy(self, proc: dict) -> None:
        state = self._state()
        state["linkproxy"] = proc
        self._save_state(state)

    def _start_haproxy(self, haproxy: str, n: int, proxy_protocol: bool) -> None:
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(render_haproxy(HAPROXY_TEMPLATE.read_text(), n, proxy_protocol))
        env = dict(os.environ, TERN_BIND_HOST=HAPROXY_IP, TERN_ADMIN_PORT=str(self.base + ADMIN),
                   TERN_PROXY_SOURCE=PROXY_SOURCE, TERN_HAPROXY_SOCKET=self._haproxy_socket)
        for k, p in enumerate(PROTOCOLS):
            env[f"TERN_PORT_{p.upper()}"] = str(self.base + k)
        for i in range(1, n + 1):
            env[f"TERN_NODE{i}_HOST"] = node_ip(i)
        check = subprocess.run([haproxy, "-c", "-q", "-f", str(cfg)], env=env, capture_output=True,
                               text=True, timeout=30)
        if check.returncode != 0:
            raise ClusterError(f"haproxy -c -f {cfg} failed:\n{check.stdout}{check.stderr}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._haproxy_socket)
        proc = spawn([haproxy, "-db", "-f", str(cfg)], self.dir / "haproxy.log", env)
        state = self._state()
        state["haproxy"] = proc
        self._save_state(state)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc_state(proc) is None:
                raise ClusterError(f"HAProxy exited at start; {self.dir / 'haproxy.log'}:\n"
                                   f"{tail(self.dir / 'haproxy.log')}")
            with contextlib.suppress(OSError), socket.create_connection(self.ports["smtp"], 1):
                return
            time.sleep(0.05)
        raise ClusterError(f"HAProxy does not listen on {self.ports['smtp']} after 10s")

    # -- the link proxy's control

    def partitioned(self) -> set[int]:
        """The nodes cut off from all others."""
        return partitioned_nodes(self.dir)

    def deaf(self) -> set[int]:
        """The nodes whose link replies are being dropped."""
        return deaf_nodes(self.dir)

    def _set_partitioned(self, nodes: set[int], deaf: set[int] | None = None) -> None:
        if self.direct_links:
            raise ClusterError(f"the cluster in {self.dir} runs with direct links (no link proxy), "
                               "so it cannot be partitioned")
        proc = self._state().get("linkproxy")
        if proc_state(proc) is None:
            raise ClusterError(f"the link proxy is not running (is the cluster in {self.dir} up?)")
        set_partitioned(self.dir, proc, nodes, deaf)

    def partition(self, i: int) -> None:
        """Cuts node i's node links from every other node, both ways (open ones are closed before
        this returns); its client ports stay reachable."""
        self._check_node(i)
        with self._locked():
            self._set_partitioned(self.partitioned() | {i})

    def deafen(self, i: int) -> None:
        """Drops every reply node i's peers send on its own link connections: what it sends
        (a forwarded proposal) arrives and acts, but it never hears the outcome. `heal` ends it
        and cuts those connections, so the lost replies stay lost."""
        self._check_node(i)
        with self._locked():
            self._set_partitioned(self.partitioned(), self.deaf() | {i})

    def heal(self) -> None:
        """Lifts every partition and deafness."""
        with self._locked():
            self._set_partitioned(set(), set())

    # -- faults on processes

    def kill(self, i: int) -> None:
        """SIGKILL node i: what a power cut looks like to the process."""
        self._check_node(i)
        with self._locked():
            proc = self._node_proc(i)
            if proc_state(proc) is None:
                raise ClusterError(f"node {i} is not running")
            signal_proc(proc, signal.SIGKILL)
            if wait_gone([proc], 10.0):
                raise ClusterError(f"node {i} (pid {proc['pid']}) still exists 10s after SIGKILL")

    def restart(self, i: int, deadline: float = START_TIMEOUT) -> None:
        """Starts node i again with the same config and data (SIGTERM first if it still runs);
        waits until it answers /health/live."""
        self._check_node(i)
        with self._locked():
            proc = self._node_proc(i)
            if proc_state(proc) is not None:
                stop_procs([proc])
            self._start_node(i)
        self.wait_live(i, deadline)

    def wipe(self, i: int) -> None:
        """SIGKILL node i (if it runs) and empty its data dir: a lost disk. `restart` brings the
        machine back under the same id, with a new data dir the cluster refuses."""
        self._check_node(i)
        if self.node_state(i) != "killed":
            self.kill(i)
        with self._locked():
            shutil.rmtree(self.data_dir(i))
            self.data_dir(i).mkdir()

    def pause(self, i: int) -> None:
        """SIGSTOP node i: it keeps its sockets but answers nothing."""
        self._signal_node(i, signal.SIGSTOP, "paused")

    def resume(self, i: int) -> None:
        """SIGCONT node i."""
        self._signal_node(i, signal.SIGCONT, "running")

    def _signal_node(self, i: int, sig: int, expect: str) -> None:
        self._check_node(i)
        with self._locked():
            proc = self._node_proc(i)
            if proc_state(proc) is None:
                raise ClusterError(f"node {i} is not running (killed?): use `restart {i}`")
            os.kill(proc["pid"], sig)
            deadline = time.monotonic() + 5
            while proc_state(proc) != expect:
                if time.monotonic() > deadline:
                    raise ClusterError(f"node {i} is {proc_state(proc)}, not {expect}, 5s after "
                                       f"{signal.Signals(sig).name}")
                time.sleep(0.01)

    # -- down

    @staticmethod
    def _named_procs(state: dict) -> list[tuple[str, dict]]:
        named = [(f"node {k}", p) for k, p in sorted(state.get("nodes", {}).items()) if p]
        named += [(k, state[k]) for k in ("haproxy", "linkproxy") if state.get(k)]
        return named

    def down(self, clean: bool = False) -> list[str]:
        """Stops HAProxy, the link proxy and every node (paused ones are resumed first; SIGTERM,
        then SIGKILL at the deadline). Keeps configs, data and logs unless `clean`. Never fails
        because a process is already gone. Returns what was still running."""
        with self._locked():
            return self._down(clean)

    def _down(self, clean: bool) -> list[str]:
        state = self._state()
        running = [name for name, p in self._named_procs(state) if proc_state(p)]
        for key in ("haproxy", "linkproxy"):
            if state.get(key):
                stop_procs([state[key]], 5.0)
        stop_procs([p for p in state["nodes"].values() if p])
        left = [name for name, p in self._named_procs(state) if proc_state(p)]
        if left:
            raise ClusterError(f"still running after SIGKILL: {', '.join(left)}")
        for name in ("state", "partitions.json", "linkproxy.ack"):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / name).unlink()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._haproxy_socket)
        if self.info:
            self.info["up"] = False
            self.info["pids"] = {"nodes": {}, "linkproxy": None, "haproxy": None}
            for node in self.info.get("nodes", []):
                node["pid"] = None
            if (self.dir / "cluster.json").exists() or not clean:
                write_atomic(self.dir / "cluster.json", json.dumps(self.info, indent=2) + "\n")
        if clean and self.dir.exists():
            if not self._looks_like_ours():
                raise ClusterError(f"{self.dir} does not look like a tern-local dir: not removed")
            shutil.rmtree(self.dir)
        return running

    # -- growing and shrinking

    def join(self, deadline: float = READY_TIMEOUT, wait: bool = True) -> int:
        """Starts the next spare node and joins it to the cluster; returns its id once it is
        ready (it holds its share of the partitions) and HAProxy has it in rotation, or, without
        `wait`, as soon as the cluster took it in (its replicas are still on their way)."""
        with self._locked():
            spare = next(iter(self.spares), None)
            if spare is None:
                raise ClusterError("no spare node left (bring the cluster up with `--spare K`)")
            seed = self.members[0]
            self.log(f"node {spare}: starting and joining the cluster")
            self._start_node(spare)
            self.wait_live(spare)
            self._cli_with_log(spare, "cluster", "join", "--seed",
                               f"{node_ip(seed)}:{self.base + self._advertise_offset}")
            self.info["members"] = self.members + [spare]
            self._save_state(self._state())
        if wait:
            self.wait_all_ready(deadline)
        return spare

    def drain(self, i: int, deadline: float = 600.0) -> None:
        """Moves every partition replica off node i (`tern cluster drain`), waits until it holds
        none, removes it from the cluster and stops it."""
        self._check_node(i)
        if i not in self.members:
            raise ClusterError(f"node {i} is not a member")
        others = [k for k in self.members if k != i and self.node_state(k) == "running"]
        if not others:
            raise ClusterError("no other running member to drain through")
        self.log(f"node {i}: draining")
        self.cli(others[0], "cluster", "drain", str(i))
        end = time.monotonic() + deadline
        held = None
        while time.monotonic() < end:
            with contextlib.suppress(ClusterError):
                held = self.partitions_held(self.cluster_status(others[0])).get(i)
                if held == 0:
                    break
            time.sleep(0.5)
        else:
            raise ClusterError(f"node {i} still holds {held} partition(s) after {deadline:.0f}s")
        self._drain_sessions(i)
        self.cli(others[0], "cluster", "remove", str(i))
        with self._locked():
            proc = self._node_proc(i)
            if proc_state(proc):
                stop_procs([proc])
            self.info["members"] = [k for k in self.members if k != i]
            self.info["drained"] = self.info.get("drained", []) + [i]
            self._save_state(self._state())
        self.log(f"node {i}: drained, removed and stopped")

    def remove_dead(self, i: int) -> None:
        """The operator's way out for a node that died or lost its data: `tern cluster remove I
        --dead` on another running member (the leaders make its replicas again from the
        survivors), then node i is stopped if it still runs and recorded as gone (its id stays
        refused; `join` brings in a spare under a new id)."""
        self._check_node(i)
        if i not in self.members:
            raise ClusterError(f"node {i} is not a member")
        others = [k for k in self.members if k != i and self.node_state(k) == "running"]
        if not others:
            raise ClusterError(f"no other running member to remove node {i} through")
        self.log(f"node {i}: removing it as dead")
        self._cli_with_log(others[0], "cluster", "remove", str(i), "--dead")
        with self._locked():
            proc = self._node_proc(i)
            if proc_state(proc):
                stop_procs([proc])
            self.info["members"] = [k for k in self.members if k != i]
            self.info["drained"] = self.info.get("drained", []) + [i]
            self._save_state(self._state())
        self.log(f"node {i}: removed and stopped")

    def _drain_sessions(self, i: int, deadline: float = SESSION_DRAIN) -> None:
        """Takes node i out of HAProxy's rotation the way an operator would before removing a
        node (`set server ... state drain`: no new connections, the open ones go on) and waits
        until its sessions have ended, at most `deadline` seconds."""
        sock = self._haproxy_socket
        server = f"node{i}"
        with contextlib.suppress(OSError):
            haproxy_command(sock, f"set server tern/{server} state drain")
        end = time.monotonic() + deadline
        open_now = None
        while time.monotonic() < end:
            with contextlib.suppress(OSError, ValueError):
                open_now = haproxy_sessions(sock).get(server, 0)
                if open_now == 0:
                    return
            time.sleep(0.2)
        self.log(f"node {i}: {open_now} session(s) still open after {deadline:.0f}s; removing it")

    @staticmethod
    def partitions_held(status: dict) -> dict[int, int]:
        """Member id → how many partition replicas (groups other than 0) it reports holding."""
        return {m.get("id"): sum(1 for g in (m.get("groups") or []) if g.get("group") != 0)
                for m in status.get("members", []) if m.get("reachable") is not False}

    # -- status

    def status(self, cluster: bool = True) -> dict:
        """Each node's pid, state ('running', 'paused', 'killed'), readiness and partition; the
        daemons; HAProxy's view; and, with `cluster`, `cluster status --json` from the first
        running node (None, with `cluster_error`, if that fails)."""
        if not self.info:
            raise ClusterError(f"no cluster in {self.dir} (no cluster.json): run `tern-local up N`")
        state = self._state()
        cut = self.partitioned()
        nodes = []
        for i in range(1, self.n + 1):
            proc = state["nodes"].get(str(i))
            s = proc_state(proc) or ("killed" if proc else "stopped")
            ready = None
            if s == "running":
                ready = http_status(self.admin_url(i) + "/health/ready", timeout=1.0) == 200
            pid = (proc or {}).get("pid") if s != "stopped" else None
            nodes.append({"id": i, "ip": node_ip(i), "pid": pid, "state": s, "ready": ready,
                          "partitioned": i in cut, "admin": self.admin_url(i)})
        result = {"dir": str(self.dir), "nodes": nodes,
                  "haproxy": proc_state(state.get("haproxy")) or "stopped",
                  "linkproxy": proc_state(state.get("linkproxy")) or "stopped",
                  "haproxy_servers": None, "cluster": None, "cluster_error": None}
        if result["haproxy"] == "running":
            with contextlib.suppress(OSError):
                result["haproxy_servers"] = haproxy_stats(self._haproxy_socket)
        first = next((n["id"] for n in nodes if n["state"] == "running"), None)
        if not cluster:
            pass
        elif first is None:
            result["cluster_error"] = "no node is running"
        else:
            try:
                result["cluster"] = self.cluster_status(first)
                result["cluster_from"] = first
            except ClusterError as e:
                result["cluster_error"] = str(e)
        return result

    def status_text(self) -> str:
        """The `tern-local status` report."""
        s = self.status(cluster=False)
        servers = s["haproxy_servers"] or {}
        out = [f"cluster in {s['dir']}: haproxy {s['haproxy']}, link proxy {s['linkproxy']}"]
        out.append(f"{'node':<6}{'address':<12}{'pid':>8}  {'state':<9}{'ready':<7}"
                   f"{'links':<13}{'haproxy':<8}")
        for n in s["nodes"]:
            ready = "-" if n["ready"] is None else ("yes" if n["ready"] else "no")
            links = "partitioned" if n["partitioned"] else "ok"
            lb = servers.get(f"node{n['id']}", "-")
            out.append(f"{n['id']:<6}{n['ip']:<12}{n['pid'] or '-':>8}  {n['state']:<9}{ready:<7}"
                       f"{links:<13}{lb:<8}")
        out.append("")
        out += [f"{p} {h}:{port}" for p, (h, port) in self.ports.items()]
        out.append("")
        first = next((n["id"] for n in s["nodes"] if n["state"] == "running"), None)
        if first is None:
            out.append("tern cluster status: no node is running")
        else:
            try:
                out.append(f"tern cluster status (from node {first}):")
                out.append(self.cli(first, "cluster", "status", timeout=10).rstrip())
            except ClusterError as e:
                out.append(str(e))
        return "\n".join(out)

    # -- context manager

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.down()
