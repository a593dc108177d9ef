#!/usr/bin/env python3
"""The node-link proxy of the local cluster: network partitions for cluster/tern-local.

One process listens on every node's advertised link address (P9 on 127.0.0.(1+J)) and forwards
each connection to that node's real link listener (P8). Nodes bind their outbound link
connections to their own address, so a connection arriving at node J's proxy from 127.0.0.(1+I)
comes from node I. While node I is partitioned, every connection from I or to I is refused (closed
at once) and the open ones are cut: I keeps its client ports but loses all its peers, both ways.

Config (JSON, --config):
    {"nodes": {"1": {"ip": "127.0.0.2", "listen": 20009, "target": 20008}, ...},
     "control": "/dir/partitions.json", "ack": "/dir/linkproxy.ack"}
Control file (written by tern-local, re-read on SIGHUP, also read at start):
    {"generation": 7, "partitioned": [2], "deaf": [3]}
A deaf node's own connections still carry what it sends, but every byte its peers send back on
them is dropped: its requests (a forwarded proposal, a vote) arrive and act, their replies never
reach it. When it stops being deaf, the connections that lost bytes are cut (their TLS streams
are broken), so a lost reply stays lost.
After applying a control file, and only once the connections it cuts are closed, the proxy
writes {"generation": 7, "partitioned": [2], "pid": ...} to the ack file (atomically). At start it
writes the ack once every listener is bound. SIGTERM/SIGINT stop it.

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

CONNECT_TIMEOUT = 5.0
CLOSE_TIMEOUT = 2.0
BUFFER = 64 * 1024


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} linkproxy: {message}", flush=True)


def write_json_atomic(path: Path, value: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value) + "\n")
    os.replace(tmp, path)


class Link:
    """One proxied connection from node `src` (None: unknown source) to node `dst`."""

    def __init__(self, src: int | None, dst: int):
        self.src = src
        self.dst = dst
        self.writers: list[asyncio.StreamWriter] = []
        self.cut = False
        self.dropped = 0          # bytes of replies dropped while src was deaf

    def touches(self, nodes: set[int]) -> bool:
        return self.dst in nodes or (self.src is not None and self.src in nodes)

    def abort(self) -> None:
        self.cut = True
        for w in self.writers:
            w.transport.abort()

    async def closed(self) -> None:
        for w in self.writers:
            try:
                await w.wait_closed()
            except Exception:  # noqa: BLE001 - an aborted transport reports its error here
                pass


class LinkProxy:
    def __init__(self, nodes: dict[int, dict], control: Path | None, ack: Path | None):
        self.nodes = nodes
        self.by_ip = {n["ip"]: i for i, n in nodes.items()}
        self.control = control
        self.ack = ack
        self.partitioned: set[int] = set()
        self.deaf: set[int] = set()
        self.generation = 0
        self.links: set[Link] = set()
        self.tasks: set[asyncio.Task] = set()
        self.refused: dict[tuple[int | None, int], int] = {}
        self.servers: list[asyncio.AbstractServer] = []
        self.stopped = asyncio.Event()
        self._reloading: asyncio.Lock | None = None

    def blocked(self, src: int | None, dst: int) -> bool:
        return dst in self.partitioned or (src is not None and src in self.partitioned)

    async def start(self) -> None:
        self._reloading = asyncio.Lock()
        for node_id, node in sorted(self.nodes.items()):
            server = await asyncio.start_server(
                lambda r, w, j=node_id: self.handle(r, w, j),
                node["ip"], node["listen"], reuse_address=True)
            self.servers.append(server)
            log(f"node {node_id}: {node['ip']}:{node['listen']} -> {node['ip']}:{node['target']}")
        await self.reload(initial=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dst: int):
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            await self.forward(reader, writer, dst)
        except asyncio.CancelledError:
            writer.transport.abort()   # only at exit, for a connection that would not close
        finally:
            self.tasks.discard(task)

    async def forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dst: int):
        peer = writer.get_extra_info("peername") or ("?", 0)
        src = self.by_ip.get(peer[0])
        who = f"node {src}" if src is not None else f"{peer[0]} (not a node)"
        if self.blocked(src, dst):
            # Nodes redial quickly: log the first refusal per pair, count the rest.
            pair = (src, dst)
            if pair not in self.refused:
                log(f"refusing {who} -> node {dst}: partitioned")
            self.refused[pair] = self.refused.get(pair, 0) + 1
            writer.transport.abort()
            return
        link = Link(src, dst)
        link.writers.append(writer)
        self.links.add(link)
        try:
            target = self.nodes[dst]
            # Keep the source address: node J sees the connection coming from node I's address.
            local = (peer[0], 0) if src is not None else None
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(target["ip"], target["target"], local_addr=local),
                    CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as e:
                log(f"{who} -> node {dst}: cannot reach {target['ip']}:{target['target']}: {e!r}")
                writer.transport.abort()
                return
            link.writers.append(up_writer)
            if link.cut or self.blocked(src, dst):  # partitioned while we were connecting
                link.abort()
                return
            await asyncio.gather(self.pump(reader, up_writer),
                                 self.pump(up_reader, writer, self.deafness(link)))
        finally:
            self.links.discard(link)
            for w in link.writers:
                if not w.transport.is_closing():
                    w.close()

    def deafness(self, link: Link):
        """For the replies of `link`: whether to drop a chunk (counting it) instead of passing it."""
        def drop(data: bytes) -> bool:
            if link.src is None or link.src not in self.deaf:
                return False
            link.dropped += len(data)
            return True
        return drop

    @staticmethod
    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   drop=None) -> None:
        try:
            while data := await reader.read(BUFFER):
                if drop is not None and drop(data):
                    continue
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof() and not writer.transport.is_closing():
                writer.write_eof()
        except (OSError, RuntimeError):
            writer.transport.abort()

    def read_control(self) -> tuple[int, set[int], set[int]]:
        if self.control is None or not self.control.exists():
            return self.generation, set(self.partitioned), set(self.deaf)
        value = json.loads(self.control.read_text())
        return (int(value.get("generation", 0)), {int(i) for i in value.get("partitioned", [])},
                {int(i) for i in value.get("deaf", [])})

    async def reload(self, initial: bool = False) -> None:
        assert self._reloading is not None
        async with self._reloading:
            try:
                generation, partitioned, deaf = self.read_control()
            except (OSError, ValueError) as e:
                log(f"cannot read {self.control}: {e!r}; keeping {sorted(self.partitioned)}")
                return
            if self.refused:
                log(f"refused {sum(self.refused.values())} connection(s) under generation "
                    f"{self.generation}")
                self.refused = {}
            if not initial or partitioned or deaf:
                log(f"generation {generation}: partitioned nodes {sorted(partitioned) or 'none'}"
                    f", deaf nodes {sorted(deaf) or 'none'}")
            self.generation, self.partitioned, self.deaf = generation, partitioned, deaf
            # Cut what the partition isolates, and what lost replies to a node no longer deaf.
            cut = [link for link in self.links if link.touches(partitioned)
                   or (link.dropped and link.src not in deaf)]
            for link in cut:
                link.abort()
            if cut:
                await asyncio.wait({asyncio.ensure_future(link.closed()) for link in cut},
                                   timeout=CLOSE_TIMEOUT)
                log(f"cut {len(cut)} open connection(s)")
            if self.ack is not None:
                write_json_atomic(self.ack, {"generation": generation, "pid": os.getpid(),
                                             "partitioned": sorted(partitioned),
                                             "deaf": sorted(deaf)})

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for link in list(self.links):
            link.abort()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=CLOSE_TIMEOUT)
        self.stopped.set()


def load_config(path: Path) -> tuple[dict[int, dict], Path | None, Path | None]:
    config = json.loads(path.read_text())
    nodes = {int(i): {"ip": n["ip"], "listen": int(n["listen"]), "target": int(n["target"])}
             for i, n in config["nodes"].items()}
    control = Path(config["control"]) if config.get("control") else None
    ack = Path(config["ack"]) if config.get("ack") else None
    return nodes, control, ack


async def serve(config: Path) -> None:
    nodes, control, ack = load_config(config)
    proxy = LinkProxy(nodes, control, ack)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(proxy.reload()))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(proxy.stop()))
    await proxy.start()
    log(f"ready (pid {os.getpid()})")
    await proxy.stopped.wait()
    log("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="the proxy's JSON config")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.config))
    except OSError as e:
        print(f"linkproxy: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
