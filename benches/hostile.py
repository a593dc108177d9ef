#!/usr/bin/env python3
"""Hostile-client figures for one `tern serve` node on loopback (issue 15).

    benches/hostile.py fetch-rss            # 200 clients FETCH 1:* BODY.PEEK[] of a 100 MiB mailbox
    benches/hostile.py fetch-rss --clients 20 --mib 50
    benches/hostile.py login-flood          # a real user's LOGIN p50/p99 while 500 guessers run
    benches/hostile.py login-flood --guessers 0       # the same user alone, for comparison
    TERN_BIN=/path/to/old/tern benches/hostile.py ...  # the figure for another build

fetch-rss: fills one mailbox with --mib MiB of 256 KiB messages (IMAP APPEND), then --clients
plain IMAP sessions log in, SELECT it and FETCH 1:* BODY.PEEK[] at once, each reading every byte.
Prints the server's RSS before and its peak (VmHWM, and sampled VmRSS) during the fetches, the
bytes read and the time taken. --guard-gib stops the run (killing the server) if its RSS passes
that much, so a build that holds whole responses in memory cannot take the machine down.

login-flood: --guessers connections, each from its own loopback address (127.1.x.y), send
IMAP LOGINs with wrong passwords back to back for --seconds, to 1,000 other accounts (or, with
--target-user, to the real user's own); meanwhile one real user on
127.0.0.1 (a device that logged in once before the flood) opens a connection and logs in with
the right password every --interval seconds; with --new-devices each of its logins comes from an
address never seen before.
Prints that user's LOGIN latency p50/p99/max, how many of its logins failed, and the guessers'
attempts and how they were answered.

Needs the release binary (make build; $TERN_BIN or the cargo target dir).
"""

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import ternlib  # noqa: E402

USER = "bench@hostile.test"
PASSWORD = ternlib.PASSWORD


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def start(tmp: Path, limits: dict) -> ternlib.Tern:
    server = ternlib.Tern(tmp / "node", limits=limits).start()
    server.cli("domain", "add", "hostile.test")
    server.add_account(USER)
    return server


async def imap_login(port: int, user: str, password: str, local: str | None = None):
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(local, 0) if local else None, limit=1 << 20)
    await reader.readline()
    writer.write(f'a1 LOGIN "{user}" "{password}"\r\n'.encode())
    await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed during LOGIN")
        if line.startswith(b"a1 "):
            return reader, writer, line


# --- fetch-rss ---------------------------------------------------------------------------------

async def fill(port: int, mib: int, size: int = 256 * 1024) -> int:
    reader, writer, line = await imap_login(port, USER, PASSWORD)
    assert line.startswith(b"a1 OK"), line
    head = f"From: load@remote.test\r\nTo: {USER}\r\nSubject: bulk\r\n\r\n".encode()
    body = head + (b"x" * 76 + b"\r\n") * ((size - len(head)) // 78)
    count = mib * 1024 * 1024 // len(body)
    for i in range(count):
        writer.write(f"f{i} APPEND INBOX {{{len(body)}+}}\r\n".encode() + body + b"\r\n")
        await writer.drain()
        line = await reader.readline()
        assert line.startswith(f"f{i} OK".encode()), line
    writer.write(b"z LOGOUT\r\n")
    await writer.drain()
    writer.close()
    return count


async def fetch_all(port: int, done: list):
    reader, writer, line = await imap_login(port, USER, PASSWORD)
    assert line.startswith(b"a1 OK"), line
    writer.write(b"a2 SELECT INBOX\r\na3 FETCH 1:* BODY.PEEK[]\r\n")
    await writer.drain()
    total, tail = 0, b""
    while True:
        chunk = await reader.read(1 << 16)
        if not chunk:
            raise ConnectionError("closed during FETCH")
        total += len(chunk)
        tail = (tail + chunk)[-64:]
        if b"\r\na3 OK" in tail or b"\r\na3 NO" in tail or b"\r\na3 BAD" in tail:
            break
    writer.close()
    done.append(total)


def fetch_rss(args, tmp: Path):
    server = start(tmp, {"max_connections_per_ip": 100000, "max_connections": 100000,
                         **ternlib.UNCAPPED})
    pid = server.proc.pid
    port = server.ports["imap"]
    try:
        count = asyncio.run(fill(port, args.mib))
        before = status_kib(pid, "VmRSS")
        peak = [before]
        stop = threading.Event()
        over = threading.Event()

        def sample():
            while not stop.is_set():
                rss = status_kib(pid, "VmRSS")
                peak[0] = max(peak[0], rss)
                if rss > args.guard_gib * 1024 * 1024:
                    over.set()
                    server.kill()
                    return
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        done: list[int] = []
        started = time.monotonic()

        async def run():
            results = await asyncio.gather(*(fetch_all(port, done) for _ in range(args.clients)),
                                           return_exceptions=True)
            return [r for r in results if isinstance(r, Exception)]

        errors = asyncio.run(run())
        took = time.monotonic() - started
        hwm = status_kib(pid, "VmHWM") if not over.is_set() else peak[0]
        stop.set()
        sampler.join()
        print(f"mailbox: {count} messages, {args.mib} MiB; clients: {args.clients}")
        if over.is_set():
            print(f"STOPPED: server RSS passed the {args.guard_gib} GiB guard "
                  f"(peak sampled {peak[0] / 1024:.0f} MiB)")
            return
        print(f"server RSS before: {before / 1024:.0f} MiB; peak during the fetches: "
              f"{max(hwm, peak[0]) / 1024:.0f} MiB (VmHWM {hwm / 1024:.0f} MiB)")
        print(f"read {sum(done) / 2**20:.0f} MiB in {took:.1f} s by {len(done)} clients; "
              f"{len(errors)} failed" + (f" (first: {errors[0]!r})" if errors else ""))
    finally:
        server.kill()


# --- login-flood -------------------------------------------------------------------------------

async def guesser(port: int, local: str, deadline: float, tally: dict, target: str | None):
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                           local_addr=(local, 0))
            await reader.readline()
            n = 0
            while time.monotonic() < deadline:
                n += 1
                victim = target or f"user{hash((local, n)) % 1000}@hostile.test"
                writer.write(f'g{n} LOGIN "{victim}" "wrong{n}"\r\n'.encode())
                await writer.drain()
                line = b""
                while not line.startswith(f"g{n} ".encode()):
                    line = await asyncio.wait_for(reader.readline(), deadline - time.monotonic())
                    if not line:
                        raise ConnectionError
                key = line.split(b"]")[0].split(b" ", 2)[-1].decode(errors="replace")
                tally[key] = tally.get(key, 0) + 1
            writer.close()
        except (ConnectionError, OSError, asyncio.TimeoutError):
            tally["closed"] = tally.get("closed", 0) + 1
            await asyncio.sleep(0.05)


async def real_user(port: int, deadline: float, interval: float, latencies: list, failed: list,
                    new_devices: bool):
    n = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        n += 1
        source = f"127.2.{n // 250}.{n % 250 + 1}" if new_devices else "127.0.0.1"
        try:
            reader, writer, line = await asyncio.wait_for(
                imap_login(port, USER, PASSWORD, source), 60)
            if line.startswith(b"a1 OK"):
                latencies.append(time.monotonic() - started)
            else:
                failed.append(line)
            writer.close()
        except (ConnectionError, OSError, asyncio.TimeoutError) as e:
            failed.append(repr(e))
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


def login_flood(args, tmp: Path):
    server = start(tmp, {"max_connections_per_ip": 100000, "max_connections": 100000,
                         **ternlib.UNCAPPED,
                         "max_auth_failures": 1_000_000})
    port = server.ports["imap"]
    try:
        latencies: list[float] = []
        failed: list = []
        tally: dict = {}

        async def run():
            # The user's device has logged in before (unless --new-devices).
            _, writer, line = await imap_login(port, USER, PASSWORD, "127.0.0.1")
            assert line.startswith(b"a1 OK"), line
            writer.close()
            deadline = time.monotonic() + args.seconds
            target = USER if args.target_user else None
            tasks = [asyncio.create_task(
                guesser(port, f"127.1.{i // 250}.{i % 250 + 1}", deadline, tally, target))
                for i in range(args.guessers)]
            # The user starts once the guessers are at it.
            await asyncio.sleep(min(2.0, args.seconds / 4))
            tasks.append(asyncio.create_task(
                real_user(port, deadline, args.interval, latencies, failed, args.new_devices)))
            _, late = await asyncio.wait(tasks, timeout=args.seconds + 30)
            for task in late:
                task.cancel()

        asyncio.run(run())
        print(f"guessers: {args.guessers} connections from their own addresses, "
              f"{args.seconds} s; their answers: {dict(sorted(tally.items()))}")
        if latencies:
            ms = sorted(x * 1000 for x in latencies)
            p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
            print(f"real user: {len(ms)} logins, p50 {statistics.median(ms):.1f} ms, "
                  f"p99 {p99:.1f} ms, max {ms[-1]:.1f} ms; {len(failed)} failed"
                  + (f" (first: {failed[0]!r})" if failed else ""))
        else:
            print(f"real user: no successful login; {len(failed)} failed "
                  + (f"(first: {failed[0]!r})" if failed else ""))
    finally:
        server.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    f = sub.add_parser("fetch-rss")
    f.add_argument("--clients", type=int, default=200)
    f.add_argument("--mib", type=int, default=100)
    f.add_argument("--guard-gib", type=float, default=8.0)
    g = sub.add_parser("login-flood")
    g.add_argument("--guessers", type=int, default=500)
    g.add_argument("--seconds", type=float, default=60)
    g.add_argument("--interval", type=float, default=0.25)
    g.add_argument("--target-user", action="store_true",
                   help="the guessers all attack the real user's account (default: 1,000 others)")
    g.add_argument("--new-devices", action="store_true",
                   help="each of the user's logins from a new address, never seen before")
    args = parser.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import tempfile
    with tempfile.TemporaryDirectory(prefix="tern-hostile-") as tmp:
        {"fetch-rss": fetch_rss, "login-flood": login_flood}[args.what](args, Path(tmp))


if __name__ == "__main__":
    os.environ.setdefault("TERN_BIN", str(ternlib.tern_bin()))
    main()
