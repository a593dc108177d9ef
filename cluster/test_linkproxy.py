"""The link proxy with plain sockets: forwarding, source addresses, partitions, deafness, heal.

Three fake "nodes" on 127.0.0.2-4, each an echo server on its real link port that records who
connected; the proxy runs as its own process, driven through ternlocal's control functions.

    python3 -m pytest -q cluster/test_linkproxy.py
"""

import contextlib
import socket
import socketserver
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ternlocal  # noqa: E402
from ternlocal import ClusterError, node_ip  # noqa: E402

N = 3


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.peers.append(self.client_address[0])
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.server.received.append(data)
                self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr):
        super().__init__(addr, Echo)
        self.peers = []
        self.received = []


@pytest.fixture
def proxy(tmp_path):
    base = ternlocal.pick_base_port(N)
    nodes = {i: (node_ip(i), base + ternlocal.LINK_PROXY, base + ternlocal.LINK)
             for i in range(1, N + 1)}
    echoes = {}
    for i, (ip, _, target) in nodes.items():
        echoes[i] = EchoServer((ip, target))
        threading.Thread(target=echoes[i].serve_forever, daemon=True).start()
    proc = ternlocal.start_linkproxy(tmp_path, nodes)
    try:
        yield Fixture(tmp_path, proc, nodes, echoes)
    finally:
        ternlocal.stop_procs([proc], 5)
        for e in echoes.values():
            e.shutdown()
            e.server_close()


class Fixture:
    def __init__(self, dir, proc, nodes, echoes):
        self.dir, self.proc, self.nodes, self.echoes = dir, proc, nodes, echoes

    def connect(self, src, dst):
        """A connection from node `src` (or None: from 127.0.0.1) to node `dst`'s proxy port."""
        s = socket.socket()
        s.settimeout(3)
        s.bind((node_ip(src) if src else "127.0.0.1", 0))
        s.connect((node_ip(dst), self.nodes[dst][1]))
        return s

    def partition(self, *nodes):
        ternlocal.set_partitioned(self.dir, self.proc, set(nodes))


def echoes(s, payload=b"ping"):
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(65536)
        if not chunk:
            return False
        got += chunk
    return got == payload


def is_closed(s, timeout=2.0):
    """The proxy closed it: EOF or reset within `timeout` (it should be at once)."""
    s.settimeout(timeout)
    try:
        s.sendall(b"x")
    except OSError:
        return True
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def refused(f, src, dst):
    try:
        s = f.connect(src, dst)
    except OSError:
        return True
    with s:
        return is_closed(s)


def test_forwards_both_ways_and_keeps_the_source_address(proxy):
    with proxy.connect(2, 1) as s:
        assert echoes(s)
        assert echoes(s, b"y" * 300_000)
    assert proxy.echoes[1].peers == [node_ip(2)]
    with proxy.connect(None, 3) as s:   # not from a node: forwarded, source not pinned
        assert echoes(s)


def test_half_close_is_forwarded(proxy):
    with proxy.connect(1, 2) as s:
        s.sendall(b"last words")
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(100):
            got += chunk
        assert got == b"last words"


def test_partition_cuts_open_links_both_ways_and_refuses_new_ones(proxy):
    f = proxy
    open_links = {(s, d): f.connect(s, d) for s, d in [(2, 1), (1, 2), (3, 2), (1, 3), (3, 1)]}
    from_outside = f.connect(None, 2)
    for s in [*open_links.values(), from_outside]:
        assert echoes(s)

    f.partition(2)    # returns once the proxy has applied it and closed the cut connections

    for (src, dst), s in open_links.items():
        if 2 in (src, dst):
            assert is_closed(s, timeout=0.5), f"{src}->{dst} still open"
        else:
            assert echoes(s), f"{src}->{dst} was cut but does not involve node 2"
    assert is_closed(from_outside, timeout=0.5)
    for src, dst in [(2, 1), (2, 3), (1, 2), (3, 2), (None, 2)]:
        assert refused(f, src, dst), f"{src}->{dst} accepted while node 2 is partitioned"
    with f.connect(1, 3) as s:
        assert echoes(s)
    assert ternlocal.partitioned_nodes(f.dir) == {2}

    f.partition()     # heal
    for src, dst in [(2, 1), (1, 2), (3, 2), (2, 3)]:
        with f.connect(src, dst) as s:
            assert echoes(s), f"{src}->{dst} after heal"
    for s in [*open_links.values(), from_outside]:
        s.close()


def test_a_deaf_node_is_heard_but_hears_no_reply_and_heal_cuts_what_lost_bytes(proxy):
    f = proxy
    from_deaf, to_deaf = f.connect(2, 1), f.connect(1, 2)
    assert echoes(from_deaf) and echoes(to_deaf)

    ternlocal.set_partitioned(f.dir, f.proc, set(), {2})
    assert ternlocal.deaf_nodes(f.dir) == {2}
    from_deaf.sendall(b"propose")
    deadline = time.monotonic() + 3
    while b"propose" not in b"".join(f.echoes[1].received) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b"propose" in b"".join(f.echoes[1].received), "the deaf node's request never arrived"
    from_deaf.settimeout(0.5)
    with pytest.raises(socket.timeout):
        from_deaf.recv(100)                       # the reply was dropped
    assert echoes(to_deaf), "a connection the deaf node did not open must still work both ways"
    with f.connect(2, 3) as new:                 # new connections from it are deaf too
        new.sendall(b"vote")
        new.settimeout(0.5)
        with pytest.raises(socket.timeout):
            new.recv(100)

    ternlocal.set_partitioned(f.dir, f.proc, set(), set())
    assert is_closed(from_deaf, timeout=0.5), "a link that lost replies must be cut on heal"
    assert echoes(to_deaf)
    with f.connect(2, 1) as s:
        assert echoes(s)
    from_deaf.close()
    to_deaf.close()


def test_two_partitioned_nodes_are_cut_from_each_other_too(proxy):
    proxy.partition(1, 3)
    for src, dst in [(1, 3), (3, 1), (1, 2), (2, 3)]:
        assert refused(proxy, src, dst)
    proxy.partition()
    with proxy.connect(1, 3) as s:
        assert echoes(s)


def test_a_node_that_is_down_behind_the_proxy_gives_a_closed_connection(proxy):
    proxy.echoes[3].shutdown()
    proxy.echoes[3].server_close()
    with proxy.connect(1, 3) as s:
        assert is_closed(s, timeout=ternlocal.CONTROL_TIMEOUT + 2)
    with proxy.connect(1, 2) as s:
        assert echoes(s)


def test_control_is_acknowledged_in_order_and_fails_clearly_without_the_proxy(proxy):
    for k in range(5):
        proxy.partition(1 + k % N)
        assert ternlocal.partitioned_nodes(proxy.dir) == {1 + k % N}
    ternlocal.stop_procs([proxy.proc], 5)
    t = time.monotonic()
    with pytest.raises(ClusterError, match="not running"):
        proxy.partition(1)
    assert time.monotonic() - t < ternlocal.CONTROL_TIMEOUT
