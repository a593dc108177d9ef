#!/usr/bin/env python3
"""A stand-in for the `tern` binary, for testing the harness (cluster/test_ternlocal.py) without
building Tern: it speaks the same command line and admin API shapes, with a toy cluster.

- `config example` lists the keys the harness feature-detects; `cluster ca|cert` write dummy PEMs.
- `serve --config F` binds every listener of F. Client ports greet (SMTP accepts any message);
  from a `proxy_protocol_from` source they first read a PROXY v2 header and greet with the client
  address it carried. The node link answers "hello"/"join" lines; every 200 ms each node says hello
  to every member's advertised address (from its own `listen` IP, as Tern's node link does) and is
  ready while it reaches a majority of the members. Members are learnt by gossip.
- The CLI (`cluster init|join|status`, `domain add`, `account add`) calls the admin API.

It is not Tern: no Raft, no mail store. It only gives the harness something real to drive.
"""

import argparse
import json
import os
import secrets
import socket
import socketserver
import struct
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROTOCOLS = ["smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s"]
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

EXAMPLE = """[server]
hostname = "localhost"
data_dir = "./tern-data"
allow_plaintext_auth_on_loopback = false
[listeners]
smtp = "0.0.0.0:25"
proxy_protocol_from = []
[cluster]
node_id = 1
partitions = 64
listen = ""
advertise = ""
seeds = []
"""


def split_addr(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


class Node:
    def __init__(self, config):
        self.config = config
        self.id = config["cluster"]["node_id"]
        self.data = Path(config["server"]["data_dir"])
        self.listen = config["cluster"]["listen"]
        self.advertise = config["cluster"].get("advertise") or self.listen
        self.trusted = {c.split("/")[0] for c in config["listeners"].get("proxy_protocol_from", [])}
        self.lock = threading.Lock()
        state = self.data / "fake-cluster.json"
        saved = json.loads(state.read_text()) if state.exists() else {}
        self.members = {int(k): v for k, v in saved.get("members", {}).items()}
        self.partitions = saved.get("partitions", 0)
        self.reachable = {}
        self.messages = 0

    def save(self):
        with self.lock:
            value = {"members": self.members, "partitions": self.partitions}
        (self.data / "fake-cluster.json").write_text(json.dumps(value))

    def merge(self, members, partitions):
        with self.lock:
            changed = any(self.members.get(int(k)) != v for k, v in members.items())
            self.members.update({int(k): v for k, v in members.items()})
            self.partitions = max(self.partitions, partitions)
        if changed:
            self.save()

    def ready(self):
        with self.lock:
            if self.id not in self.members:
                return False
            up = 1 + sum(1 for m in self.members if m != self.id and self.reachable.get(m))
            return up * 2 > len(self.members)

    def line(self, text):
        """The node link: 'hello ID ADDR' / 'join ID ADDR' → 'members JSON PARTITIONS'."""
        words = text.split()
        if len(words) == 3 and words[0] in ("hello", "join"):
            with self.lock:
                known = self.id in self.members
            if words[0] == "join" and known:
                self.merge({int(words[1]): words[2]}, 0)
            with self.lock:
                members = json.dumps(self.members, separators=(",", ":"))
                return f"members {members} {self.partitions}\n"
        return "error\n"

    def call(self, addr, text, timeout=1.0):
        with socket.socket() as s:
            s.settimeout(timeout)
            s.bind((split_addr(self.listen)[0], 0))
            s.connect(split_addr(addr))
            s.sendall(text.encode())
            reply = s.makefile().readline().split(" ", 2)
        if reply[0] != "members":
            raise OSError("bad reply")
        members, partitions = json.loads(reply[1]), int(reply[2])
        self.merge(members, partitions)
        return members

    def gossip(self):
        while True:
            with self.lock:
                peers = {m: a for m, a in self.members.items() if m != self.id}
            for m, addr in peers.items():
                try:
                    self.call(addr, f"hello {self.id} {self.advertise}\n", 0.5)
                    ok = True
                except (OSError, ValueError, IndexError):
                    ok = False
                with self.lock:
                    self.reachable[m] = ok
            time.sleep(0.2)

    def status(self):
        with self.lock:
            members = dict(self.members)
            reachable = dict(self.reachable)
            partitions = self.partitions
        ready = self.ready()
        voters = sorted(members)[:3]
        view = [{"group": g, "term": 1, "leader": voters[0] if ready and voters else None,
                 "voters": voters, "learners": [], "last_log_index": 1, "committed": 1,
                 "applied": 1, "matched": {}} for g in range(partitions + 1 if members else 0)]
        return {"node": self.id, "partitions": partitions, "ready": ready,
                "members": [{"id": m, "addr": a,
                             "reachable": m == self.id or bool(reachable.get(m)),
                             # The toy has one view for all: each member "agrees" with ours.
                             "groups": view if m == self.id or reachable.get(m) else []}
                            for m, a in sorted(members.items())]}


def client_handler(node, protocol):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            client = self.client_address[0]
            if client in node.trusted:
                head = self.rfile.read(16)
                if len(head) < 16 or head[:12] != V2_SIGNATURE:
                    return
                body = self.rfile.read(struct.unpack("!H", head[14:16])[0])
                if head[13] == 0x11 and len(body) >= 12:
                    client = socket.inet_ntoa(body[:4])
            if protocol in ("submissions", "imaps", "pop3s"):
                self.rfile.read(1)
                return
            greeting = {"smtp": "220", "submission": "220", "imap": "* OK", "pop3": "+OK"}
            self.wfile.write(f"{greeting[protocol]} node{node.id} fake ({client})\r\n".encode())
            if protocol not in ("smtp", "submission"):
                self.rfile.readline()
                return
            while line := self.rfile.readline():
                verb = line[:4].upper()
                if verb == b"DATA":
                    self.wfile.write(b"354 go on\r\n")
                    while (data := self.rfile.readline()) not in (b".\r\n", b""):
                        pass
                    node.messages += 1
                    self.wfile.write(f"250 2.0.0 queued on node{node.id}\r\n".encode())
                elif verb == b"QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                elif verb == b"EHLO":
                    self.wfile.write(f"250-node{node.id}\r\n250 8BITMIME\r\n".encode())
                else:
                    self.wfile.write(b"250 ok\r\n")
    return Handler


def link_handler(node):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline().decode()
            self.wfile.write(node.line(line).encode())
    return Handler


def admin_handler(node, token):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, value):
            body = (json.dumps(value) + "\n").encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def authorized(self):
            if self.headers.get("authorization") == f"Bearer {token}":
                return True
            self.reply(401, {"error": "missing or wrong admin token"})
            return False

        def do_GET(self):
            if self.path == "/health/live":
                return self.reply(200, "ok")
            if self.path == "/health/ready":
                return self.reply(200 if node.ready() else 503, "ready" if node.ready() else "no")
            if not self.authorized():
                return
            if self.path == "/v1/cluster/status":
                return self.reply(200, node.status())
            if self.path == "/v1/cluster/digests":
                return self.reply(200, {"node": node.id, "groups": [
                    {"group": g, "applied": 1, "digest": "00"}
                    for g in range(node.partitions + 1 if node.members else 0)]})
            self.reply(404, {"error": "not found"})

        def do_POST(self):
            if not self.authorized():
                return
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            if self.path == "/v1/cluster/init":
                if node.members:
                    return self.reply(409, {"error": "already initialised"})
                node.merge({node.id: node.advertise}, int(body.get("partitions", 64)))
                return self.reply(200, node.status())
            if self.path == "/v1/cluster/join":
                seeds = [body["seed"]] if body.get("seed") else node.config["cluster"]["seeds"]
                for seed in seeds:
                    try:
                        node.call(seed, f"join {node.id} {node.advertise}\n", 5)
                    except (OSError, ValueError, IndexError):
                        continue
                    if node.id in node.members:
                        return self.reply(200, node.status())
                return self.reply(502, {"error": f"no seed answered: {seeds}"})
            if self.path.startswith("/v1/"):
                return self.reply(200, {"ok": True})
            self.reply(404, {"error": "not found"})
    return Handler


def serve(config_path):
    config = tomllib.loads(Path(config_path).read_text())
    node = Node(config)
    node.data.mkdir(parents=True, exist_ok=True)
    token_file = node.data / "admin.token"
    if not token_file.exists():
        token_file.write_text(secrets.token_hex(16))
    token = token_file.read_text().strip()
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    servers = [socketserver.ThreadingTCPServer(split_addr(config["listeners"][p]),
                                               client_handler(node, p)) for p in PROTOCOLS]
    servers.append(socketserver.ThreadingTCPServer(split_addr(node.listen), link_handler(node)))
    admin = ThreadingHTTPServer(split_addr(config["listeners"]["admin"]),
                                admin_handler(node, token))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    threading.Thread(target=node.gossip, daemon=True).start()
    print(f"fake tern node {node.id} serving", flush=True)
    admin.serve_forever()


def api(args, method, path, body=None):
    token = Path(args.data, "admin.token").read_text().strip()
    req = urllib.request.Request(args.admin + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        sys.exit(f"error: {e.code} {e.read().decode().strip()}")
    except OSError as e:
        sys.exit(f"error: {args.admin}: {e}")


def main():
    p = argparse.ArgumentParser(prog="tern")
    p.add_argument("--admin", default=os.environ.get("TERN_ADMIN", "http://127.0.0.1:8080"))
    p.add_argument("--data", default=os.environ.get("TERN_DATA", "./tern-data"))
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("serve").add_argument("--config", required=True)
    sub.add_parser("config").add_argument("what", choices=["example"])
    cl = sub.add_parser("cluster").add_subparsers(dest="sub", required=True)
    cl.add_parser("ca").add_argument("--dir", required=True)
    cert = cl.add_parser("cert")
    for opt in ("--ca", "--node", "--addr"):
        cert.add_argument(opt, required=True)
    cert.add_argument("--out")
    cl.add_parser("init").add_argument("--partitions", type=int, default=64)
    cl.add_parser("join").add_argument("--seed")
    cl.add_parser("status").add_argument("--json", action="store_true")
    cl.add_parser("remove").add_argument("node", type=int)
    for name in ("domain", "account"):
        s = sub.add_parser(name)
        s.add_argument("action")
        s.add_argument("name")
        s.add_argument("--password")
    args = p.parse_args()

    if args.cmd == "serve":
        serve(args.config)
    elif args.cmd == "config":
        print(EXAMPLE, end="")
    elif args.cmd == "cluster" and args.sub == "ca":
        Path(args.dir).mkdir(parents=True, exist_ok=True)
        for name in ("ca.pem", "ca.key"):
            Path(args.dir, name).write_text(f"fake {name}\n")
    elif args.cmd == "cluster" and args.sub == "cert":
        out = Path(args.out or args.ca)
        for ext in ("pem", "key"):
            Path(out, f"node-{args.node}.{ext}").write_text(f"fake node {args.node} {args.addr}\n")
    elif args.cmd == "cluster" and args.sub == "init":
        api(args, "POST", "/v1/cluster/init", {"partitions": args.partitions})
        print("initialised")
    elif args.cmd == "cluster" and args.sub == "join":
        api(args, "POST", "/v1/cluster/join", {"seed": args.seed})
        print("joined")
    elif args.cmd == "cluster" and args.sub == "status":
        status = api(args, "GET", "/v1/cluster/status")
        if args.json:
            print(json.dumps(status))
        else:
            print("NODE  ADDRESS                 REACHABLE")
            for n in status["members"]:
                print(f"{n['id']:<5} {n['addr']:<23} {'yes' if n['reachable'] else 'NO'}")
            groups = status["members"][0]["groups"] if status["members"] else []
            print(f"{len(groups)} groups, leader {groups[0]['leader'] if groups else None}")
    else:
        api(args, "POST", f"/v1/{args.cmd}", {"name": args.name})


if __name__ == "__main__":
    main()
