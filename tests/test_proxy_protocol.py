"""PROXY protocol on the client listeners: a real HAProxy in TCP mode (`send-proxy-v2`) in front
of one node, hand-made v1/v2 headers, and peers that are not proxies.

HAProxy connects to the node from 127.0.0.254, the only trusted proxy source; the tests' own
clients connect from 127.0.0.1. Through HAProxy the node must see 127.0.0.1 (the real client),
never 127.0.0.254; a direct client from 127.0.0.1 sends no header and is served as before.
"""

import email
import imaplib
import ipaddress
import re
import shutil
import smtplib
import socket
import ssl
import struct
import subprocess

import pytest

from ternlib import PASSWORD, ProxiedTern, free_port, message, wait_until

PROXY_IP = "127.0.0.254"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None,
                                reason="haproxy is not installed (make test-deps installs it)")


class HAProxy:
    """A `haproxy -db` process forwarding one 127.0.0.1 port per backend to the node, with a
    PROXY v2 header, from source address 127.0.0.254."""

    def __init__(self, workdir, backends: dict[str, int]):
        self.ports = {name: free_port() for name in backends}
        # A frontend without servers: it accepts once HAProxy has bound every port, and
        # probing it opens no connection to the node.
        self.ready_port = free_port()
        lines = [
            "global",
            "    maxconn 200",
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 60s",
            "    timeout server 60s",
            "listen ready",
            f"    bind 127.0.0.1:{self.ready_port}",
        ]
        for name, node_port in backends.items():
            lines += [
                f"listen {name}",
                f"    bind 127.0.0.1:{self.ports[name]}",
                f"    server s1 127.0.0.1:{node_port} send-proxy-v2 source {PROXY_IP}",
            ]
        self.config_path = workdir / "haproxy.cfg"
        self.config_path.write_text("\n".join(lines) + "\n")
        self.log_path = workdir / "haproxy.log"
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["haproxy", "-f", str(self.config_path), "-db"],
                                         stdout=log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited:\n{self.log_path.read_text(errors='replace')}")
            with socket.create_connection(("127.0.0.1", self.ready_port), timeout=2):
                return True

        wait_until(ready, timeout=30, what="haproxy to listen")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_node(tmp_path, **kwargs) -> ProxiedTern:
    node = ProxiedTern(tmp_path / "node", proxy_from=[f"{PROXY_IP}/32"], **kwargs)
    try:
        node.start()
        node.cli("domain", "add", "test.example")
        node.add_account("bob@test.example")
    except BaseException:
        node.kill()
        raise
    return node


@pytest.fixture
def node(tmp_path):
    node = start_node(tmp_path)
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture
def haproxy(tmp_path, node):
    proxy = HAProxy(tmp_path, {p: node.ports[p] for p in ("smtp", "imap", "imaps")})
    try:
        yield proxy.start()
    finally:
        proxy.stop()


def v2_header(src=None, dst=None) -> bytes:
    """A PROXY v2 header: PROXY over TCP4/TCP6 for (ip, port) pairs, LOCAL without them."""
    if src is None:
        return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    s, d = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    family = 0x11 if s.version == 4 else 0x21
    body = s.packed + d.packed + struct.pack("!HH", src[1], dst[1])
    return V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


class SMTPBehindHeader(smtplib.SMTP):
    """smtplib that connects from the trusted proxy address and sends `header` first, as a
    load balancer would."""

    def __init__(self, port, header: bytes):
        self.header = header
        super().__init__("127.0.0.1", port, timeout=30, source_address=(PROXY_IP, 0))

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout, self.source_address)
        sock.sendall(self.header)
        return sock


def raw_connect(port, source=None, timeout=20.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0) if source else None)


def read_line(sock) -> bytes:
    """One line from the server; b"" if it closed (or reset) the connection first."""
    line = b""
    while not line.endswith(b"\n"):
        try:
            chunk = sock.recv(1)
        except ConnectionResetError:
            break
        if not chunk:
            break
        line += chunk
    return line


def inbox_by_subject(node, subject, user="bob@test.example"):
    """Reads the INBOX directly (from 127.0.0.1, no header) and returns the message."""
    imap = imaplib.IMAP4("127.0.0.1", node.ports["imap"])
    try:
        imap.login(user, PASSWORD)
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("SEARCH", None, "SUBJECT", f'"{subject}"')
        uids = data[0].split()
        assert len(uids) == 1, (subject, uids)
        _, parts = imap.uid("FETCH", uids[0], "(BODY.PEEK[])")
        return email.message_from_bytes(parts[0][1])
    finally:
        imap.logout()


def log_lines(node, pattern: str):
    text = ANSI.sub("", node.log_path.read_text(errors="replace"))
    return [line for line in text.splitlines() if re.search(pattern, line)]


def received_from(msg) -> str:
    return " ".join(msg["Received"].split())


def test_smtp_through_haproxy_records_the_real_client(node, haproxy):
    s = smtplib.SMTP("127.0.0.1", haproxy.ports["smtp"], timeout=30)
    s.ehlo("client.test")
    assert s.sendmail("alice@remote.example", ["bob@test.example"], message("via haproxy")) == {}
    s.quit()

    received = received_from(inbox_by_subject(node, "via haproxy"))
    assert "[127.0.0.1]" in received, received
    assert PROXY_IP not in received, received
    accepted = wait_until(lambda: log_lines(
        node, rf"proxy={re.escape(PROXY_IP)}:\d+ client=127\.0\.0\.1:\d+.*accepted"),
        timeout=10, what="the accepted line naming client and proxy")
    assert accepted


def test_direct_clients_send_no_header(node, haproxy):
    s = smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=30)
    code, banner = s.ehlo("direct.test")
    assert code == 250, banner
    assert s.sendmail("alice@remote.example", ["bob@test.example"], message("direct")) == {}
    s.quit()
    received = received_from(inbox_by_subject(node, "direct"))
    assert "[127.0.0.1]" in received, received


def test_imap_and_imaps_through_haproxy_log_in(node, haproxy):
    imap = imaplib.IMAP4("127.0.0.1", haproxy.ports["imap"])
    assert imap.login("bob@test.example", PASSWORD)[0] == "OK"
    assert imap.select("INBOX")[0] == "OK"
    imap.logout()
    # Implicit TLS: the ClientHello follows the PROXY header in the same stream.
    imaps = imaplib.IMAP4_SSL("127.0.0.1", haproxy.ports["imaps"],
                              ssl_context=ssl._create_unverified_context())
    assert imaps.login("bob@test.example", PASSWORD)[0] == "OK"
    imaps.logout()
    for proto in ("imap", "imaps"):
        wait_until(lambda: log_lines(
            node, rf"proto=\"?{proto}\"? proxy={re.escape(PROXY_IP)}:\d+ client=127\.0\.0\.1:\d+.*logged in"),
            timeout=10, what=f"an {proto} login logged with client and proxy")


@pytest.mark.parametrize(
    "header, client",
    [
        (b"PROXY TCP4 192.0.2.9 127.0.0.1 40000 25\r\n", "[192.0.2.9]"),
        (v2_header(("2001:db8::25", 40000), ("2001:db8::1", 25)), "[2001:db8::25]"),
        # LOCAL (HAProxy's health checks): the proxy speaks for itself.
        (v2_header(), f"[{PROXY_IP}]"),
    ],
    ids=["v1-tcp4", "v2-tcp6", "v2-local"],
)
def test_hand_made_headers_name_the_client(node, header, client):
    subject = f"hand made {client}"
    s = SMTPBehindHeader(node.ports["smtp"], header)
    s.ehlo("client.test")
    assert s.sendmail("alice@remote.example", ["bob@test.example"], message(subject)) == {}
    s.quit()
    received = received_from(inbox_by_subject(node, subject))
    assert client in received, received


def test_trusted_source_without_a_header_is_closed_silently(node, haproxy):
    # Connected first, never says anything: closed at the header deadline, no greeting.
    silent = raw_connect(node.ports["smtp"], source=PROXY_IP)
    for proto, garbage in [("smtp", b"EHLO not-a-proxy\r\n"), ("imaps", b"\x16\x03\x01\x00\x05hello"),
                           ("imap", b"PROXY TCP4 nonsense\r\n")]:
        sock = raw_connect(node.ports[proto], source=PROXY_IP)
        sock.sendall(garbage)
        assert read_line(sock) == b"", f"{proto}: a greeting was sent to a bad header"
        sock.close()
    assert read_line(silent) == b"", "a silent trusted peer must be closed without a greeting"
    silent.close()

    # The node keeps serving everyone else, direct and proxied.
    direct = raw_connect(node.ports["smtp"])
    assert read_line(direct).startswith(b"220")
    direct.close()
    s = smtplib.SMTP("127.0.0.1", haproxy.ports["smtp"], timeout=30)
    assert s.noop()[0] == 250
    s.quit()
    assert log_lines(node, r"no valid PROXY header"), node.log_tail()


def test_per_ip_cap_counts_the_real_client(tmp_path):
    node = start_node(tmp_path, limits={"max_connections_per_ip": 2})
    proxy = HAProxy(tmp_path, {"smtp": node.ports["smtp"]})
    held = []
    try:
        proxy.start()

        def proxied_greeting():
            sock = raw_connect(proxy.ports["smtp"])
            held.append(sock)
            return read_line(sock)

        # Two clients from 127.0.0.1 through the proxy fill 127.0.0.1's slots...
        def two_held():
            for sock in held:
                sock.close()
            held.clear()
            return all(proxied_greeting().startswith(b"220") for _ in range(2))

        wait_until(two_held, timeout=15, what="two proxied sessions from 127.0.0.1")
        # ...so a third one through the proxy, and a direct one, are refused like any client
        # over its cap...
        assert proxied_greeting().startswith(b"421")
        direct = raw_connect(node.ports["smtp"])
        held.append(direct)
        assert read_line(direct).startswith(b"421")
        # ...while the proxy's own address is not capped: another client behind it is served.
        other = SMTPBehindHeader(node.ports["smtp"], b"PROXY TCP4 192.0.2.77 127.0.0.1 5000 25\r\n")
        assert other.noop()[0] == 250
        other.quit()
    finally:
        for sock in held:
            sock.close()
        proxy.stop()
        node.kill()


def test_bad_proxy_network_is_a_startup_error(tmp_path):
    node = ProxiedTern(tmp_path / "node", proxy_from=["10.0.0.0/33"])
    with pytest.raises(RuntimeError) as failed:
        node.start(timeout=30, attempts=1)
    assert "proxy_protocol_from" in str(failed.value), str(failed.value)
    assert "10.0.0.0/33" in str(failed.value), str(failed.value)
