#!/usr/bin/env python3
"""Outbound throughput: messages/s from submission to a remote Postfix's Maildir.

Starts a private unbound (MX for remote.test) and a private Postfix (the remote MX), both from
tests/mta.py, and a single Tern node whose [relay] points at them. SENDERS parallel sessions
submit MESSAGES messages of SIZE bytes as one authenticated user to RECIPIENTS addresses at
remote.test (DKIM-signed when --dkim). Reports:

- submitted/s: final 250s over the time from the first connection to the last 250;
- delivered/s: messages in Postfix's Maildir over the time from the first connection until
  the last one arrived (Postfix's own local delivery is part of that path);
- CPU seconds of Tern, and of the Postfix processes still running at the end (smtpd
  processes that exited are not counted).

    benches/outbound.py --messages 2000 --senders 10 --dkim

Needs root (Postfix), unbound and postfix installed (`make test-deps`), and a release build.
Everything it starts is stopped at the end, also on failure.
"""
import argparse
import os
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from mta import Postfix, Unbound  # noqa: E402
from ternlib import PASSWORD, Tern, wait_until  # noqa: E402

SENDER = "bench@out.test"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def postfix_cpu() -> float:
    """CPU seconds of every running Postfix process (master, smtpd, cleanup, local, ...)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            exe = os.readlink(proc / "exe")
        except OSError:
            continue
        if "/postfix/" in exe or exe.endswith("/master"):
            try:
                total += cpu_seconds(int(proc.name))
            except OSError:
                pass
    return total


def body(i: int, to: str, size: int) -> bytes:
    head = (f"From: <{SENDER}>\r\nTo: <{to}>\r\nSubject: outbound bench {i}\r\n"
            f"Message-ID: <bench.{i}.{time.time_ns()}@out.test>\r\n"
            f"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\n").encode()
    line = b"The quick brown fox jumps over the lazy dog, outbound.\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--senders", type=int, default=10)
    ap.add_argument("--recipients", type=int, default=20, help="distinct addresses at remote.test")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--dkim", action="store_true", help="sign with an rsa-2048 key")
    ap.add_argument("--timeout", type=float, default=600.0)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="tern-outbound-") as tmp:
        tmp = Path(tmp)
        for sub in ("dns", "mx"):
            (tmp / sub).mkdir()
        dns = Unbound(tmp / "dns", ["remote.test. IN MX 10 mx.remote.test.",
                                    "mx.remote.test. IN A 127.0.0.1"])
        mx = None
        tern = None
        try:
            mx = Postfix(tmp / "mx", ["remote.test"])
            config = (f'[dns]\nservers = ["{dns.addr}"]\n'
                      f"[relay]\nport = {mx.port}\n")
            tern = Tern(tmp / "node", extra_config=config,
                        limits={"max_message_size": max(a.size * 2, 1 << 20)}).start()
            tern.cli("domain", "add", "out.test")
            tern.add_account(SENDER)
            if a.dkim:
                tern.cli("domain", "dkim", "out.test")
            recipients = [f"r{k}@remote.test" for k in range(a.recipients)]
            total = a.messages
            next_index = iter(range(total))
            lock = threading.Lock()
            done_at: list[float] = []
            errors: list[str] = []

            def sender():
                s = smtplib.SMTP("127.0.0.1", tern.ports["submission"], timeout=60)
                s.login(SENDER, PASSWORD)
                while True:
                    with lock:
                        i = next(next_index, None)
                    if i is None:
                        break
                    to = recipients[i % len(recipients)]
                    try:
                        s.sendmail(SENDER, [to], body(i, to, a.size))
                        with lock:
                            done_at.append(time.monotonic())
                    except smtplib.SMTPException as e:
                        errors.append(f"{type(e).__name__}: {e}")
                s.quit()

            cpu0 = (cpu_seconds(tern.proc.pid), postfix_cpu())
            start = time.monotonic()
            threads = [threading.Thread(target=sender) for _ in range(a.senders)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            accepted = len(done_at)

            def arrived():
                return sum(len(list((mx.maildirs / "all" / sub).glob("*")))
                           for sub in ("new", "cur")) >= accepted

            wait_until(arrived, timeout=a.timeout, interval=0.05, what=f"{accepted} messages in Postfix")
            delivered = time.monotonic()
            cpu1 = (cpu_seconds(tern.proc.pid), postfix_cpu())
            submit_secs = max(done_at) - start if done_at else float("nan")
            print(f"messages: {total} of {a.size} bytes, {a.senders} senders, "
                  f"{a.recipients} recipients, dkim={'rsa' if a.dkim else 'off'}")
            print(f"accepted: {accepted}, failed: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
            print(f"submitted/s: {accepted / submit_secs:.0f}  ({submit_secs:.2f} s)")
            print(f"delivered/s (submission -> Postfix Maildir): {accepted / (delivered - start):.0f}  "
                  f"({delivered - start:.2f} s)")
            print(f"CPU s: tern {cpu1[0] - cpu0[0]:.1f}, postfix {cpu1[1] - cpu0[1]:.1f} "
                  "(its processes still running at the end)")
            if errors:
                sys.exit(1)
        finally:
            if tern:
                tern.kill()
            if mx:
                mx.stop()
            dns.stop()


if __name__ == "__main__":
    main()
