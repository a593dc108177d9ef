"""IMAP extensions checked with Python's imaplib and zlib: QUOTA (RFC 9208) from the account's
quota, STATUS DELETED / DELETED-STORAGE / APPENDLIMIT, the APPENDLIMIT capability, and
COMPRESS=DEFLATE (RFC 4978)."""

import imaplib
import re
import socket
import zlib
from pathlib import Path

from ternlib import PASSWORD, message


def login(tern, user="bob@test.example"):
    imap = imaplib.IMAP4("127.0.0.1", tern.ports["imap"])
    imap.login(user, PASSWORD)
    return imap


def test_quota_root_and_usage_follow_the_account_quota(tern):
    tern.add_account("quota@test.example", quota=1024 * 1024)
    imap = login(tern, "quota@test.example")
    caps = imap.capabilities
    assert "QUOTA" in caps and "QUOTA=RES-STORAGE" in caps, caps
    body = message("quota", "x" * 20000 + "\r\n")
    assert imap.append("INBOX", None, None, body)[0] == "OK"
    typ, data = imap.getquotaroot("INBOX")
    assert typ == "OK", data
    roots, quotas = data
    assert roots == [b'"INBOX" ""'] or roots == [b'INBOX ""'], roots
    used_kib = (len(body) + 1023) // 1024
    assert quotas == [f'"" (STORAGE {used_kib} 1024)'.encode()], quotas
    assert imap.getquota('""')[1] == [f'"" (STORAGE {used_kib} 1024)'.encode()]
    # Only the administrator sets quotas; an unknown root does not exist.
    typ, data = imap._simple_command("SETQUOTA", '""', "(STORAGE 99999)")
    assert typ == "NO" and b"NOPERM" in data[0], (typ, data)
    assert imap.getquota("other")[0] == "NO"
    imap.logout()

    # An account without a quota has no quota root.
    imap = login(tern)
    assert imap.getquotaroot("INBOX")[1][0] in ([b'"INBOX"'], [b"INBOX"]), imap.getquotaroot("INBOX")
    assert imap.getquota('""')[0] == "NO"
    imap.logout()


def test_status_deleted_and_appendlimit(tern):
    imap = login(tern)
    limit = [c for c in imap.capabilities if c.startswith("APPENDLIMIT=")]
    assert limit and int(limit[0].split("=")[1]) > 0, imap.capabilities
    for i in range(3):
        imap.append("INBOX", "(\\Deleted)" if i else None, None, message(f"d{i}"))
    typ, data = imap.status("INBOX", "(MESSAGES DELETED DELETED-STORAGE APPENDLIMIT)")
    assert typ == "OK", data
    text = data[0].decode()
    assert "MESSAGES 3" in text and "DELETED 2" in text, text
    size = sum(len(message(f"d{i}")) for i in (1, 2))
    assert f"DELETED-STORAGE {size}" in text, text
    assert f"APPENDLIMIT {limit[0].split('=')[1]}" in text, text
    imap.logout()


class Deflated:
    """An IMAP connection after COMPRESS DEFLATE (RFC 4978): raw deflate both ways."""

    def __init__(self, sock):
        self.sock = sock
        self.out = zlib.compressobj(wbits=-15)
        self.inp = zlib.decompressobj(wbits=-15)
        self.buf = b""

    def send(self, data: bytes):
        self.sock.sendall(self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH))

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += self.inp.decompress(chunk)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            lines.append(self.line())
            if lines[-1].startswith(tag + b" "):
                return lines


def test_compress_deflate_carries_commands_literals_and_idle(tern):
    body = message("compressed", "".join(f"line {i} of a compressible body\r\n" for i in range(2000)))
    plain = login(tern)
    plain.append("INBOX", None, None, body)
    plain.logout()

    sock = socket.create_connection(("127.0.0.1", tern.ports["imap"]), timeout=30)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    sock.sendall(f'a1 LOGIN bob@test.example "{PASSWORD}"\r\n'.encode())
    assert b"COMPRESS=DEFLATE" in f.readline()
    sock.sendall(b"a2 COMPRESS DEFLATE\r\n")
    assert f.readline().startswith(b"a2 OK")
    z = Deflated(sock)
    z.send(b"a3 SELECT INBOX\r\n")
    assert z.until(b"a3")[-1].startswith(b"a3 OK")
    z.send(b"a4 FETCH 1 BODY.PEEK[]\r\n")
    got = z.line()
    size = int(re.search(rb"\{(\d+)\}$", got).group(1))
    while len(z.buf) < size:
        z.buf += z.inp.decompress(sock.recv(65536))
    assert z.buf[:size] == body
    z.buf = z.buf[size:]
    assert z.until(b"a4")[-1].startswith(b"a4 OK")
    # A literal sent compressed, and a second COMPRESS refused.
    z.send(b"a5 APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
    assert z.until(b"a5")[-1].startswith(b"a5 OK")
    z.send(b"a6 COMPRESS DEFLATE\r\n")
    assert b"COMPRESSIONACTIVE" in z.until(b"a6")[-1]
    # IDLE: a pushed EXISTS arrives compressed and flushed.
    z.send(b"a7 IDLE\r\n")
    assert z.line().startswith(b"+")
    other = login(tern)
    other.append("INBOX", None, None, message("wake"))
    other.logout()
    assert z.line() == b"* 3 EXISTS"
    z.send(b"DONE\r\n")
    assert z.until(b"a7")[-1].startswith(b"a7 OK")
    sock.close()


def test_readme_lists_the_capabilities_the_server_announces(tern):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("<!-- imap-capabilities -->", 1)[1].split("```")[1]
    documented = set(block.split())
    imap = login(tern)
    typ, data = imap.capability()
    assert typ == "OK", data
    announced = {"APPENDLIMIT=N" if c.startswith("APPENDLIMIT=") else c
                 for c in data[-1].decode().split()}
    imap.logout()
    assert announced == documented, (announced ^ documented)
