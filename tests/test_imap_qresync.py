"""CONDSTORE/QRESYNC (RFC 7162) and the session state of RFC 3501 clients, over a raw socket:
VANISHED instead of EXPUNGE once QRESYNC is enabled, SELECT (QRESYNC ...) resynchronising a
returning client, UID FETCH (CHANGEDSINCE ... VANISHED), [CLOSED] when a new mailbox is
selected, `\\Recent` given to one session only, and keywords announced in FLAGS before use."""

import re
import socket

from ternlib import PASSWORD, message


class Client:
    """A line-level IMAP client: `run` sends one command and returns its response lines."""

    def __init__(self, tern):
        self.sock = socket.create_connection(("127.0.0.1", tern.ports["imap"]), timeout=30)
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"* OK")
        self.n = 0
        assert self.run(f'LOGIN bob@test.example "{PASSWORD}"')[-1].split()[1] == "OK"

    def run(self, command: str, literal: bytes | None = None) -> list[str]:
        self.n += 1
        tag = f"t{self.n}"
        if literal is None:
            self.sock.sendall(f"{tag} {command}\r\n".encode())
        else:
            self.sock.sendall(f"{tag} {command} {{{len(literal)}+}}\r\n".encode() + literal + b"\r\n")
        lines = []
        while True:
            line = self.file.readline()
            assert line, f"connection closed after {lines}"
            text = line.decode().rstrip("\r\n")
            lines.append(text)
            if text.startswith(tag + " "):
                return lines

    def ok(self, command: str, literal: bytes | None = None) -> list[str]:
        lines = self.run(command, literal)
        assert lines[-1].split()[1] == "OK", lines
        return lines

    def close(self):
        self.sock.close()


def code(lines: list[str], name: str) -> int:
    for line in lines:
        m = re.search(rf"\[{name} (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no [{name}] in {lines}")


def test_qresync_reports_vanished_and_resynchronises_a_returning_client(tern):
    a = Client(tern)
    assert "* ENABLED QRESYNC" in a.ok("ENABLE QRESYNC")
    for i in range(5):
        a.ok("APPEND INBOX", message(f"qresync {i}"))
    selected = a.ok("SELECT INBOX")
    uidvalidity, before = code(selected, "UIDVALIDITY"), code(selected, "HIGHESTMODSEQ")
    assert not any("CLOSED" in line for line in selected), selected

    # Our own expunge, and another session's, come back as VANISHED UID sets.
    a.ok("UID STORE 3 +FLAGS.SILENT (\\Deleted)")
    expunged = a.ok("UID EXPUNGE 3")
    assert "* VANISHED 3" in expunged and not any("EXPUNGE" in line for line in expunged[:-1])
    b = Client(tern)
    b.ok("SELECT INBOX")
    b.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)")
    assert "* 3 EXPUNGE" in b.ok("UID EXPUNGE 4"), "a client without QRESYNC gets EXPUNGE"
    b.ok("UID STORE 2 +FLAGS.SILENT (\\Flagged)")
    noop = a.ok("NOOP")
    assert "* VANISHED 4" in noop, noop
    assert any(re.match(r"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged[^)]*\) MODSEQ \(\d+\)", line)
               for line in noop), noop
    b.close()

    # Selecting another mailbox closes this one first.
    assert a.ok("EXAMINE Sent")[0] == "* OK [CLOSED] Previous mailbox is now closed"

    # A returning client: what changed since `before` is reported, nothing else.
    c = Client(tern)
    c.ok("ENABLE QRESYNC")
    back = c.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {before} 1:5))")
    assert "* VANISHED (EARLIER) 3:4" in back, back
    fetched = [line for line in back if " FETCH " in line]
    assert len(fetched) == 1 and re.match(r"\* 2 FETCH \(UID 2 FLAGS \(\\Flagged.*MODSEQ", fetched[0]), back
    changed = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {before} VANISHED)")
    assert changed[0] == "* VANISHED (EARLIER) 3:4", changed
    assert [line for line in changed if line.startswith("* ") and " FETCH " in line] == [
        line for line in changed if line.startswith("* 2 FETCH")], changed
    # A stale UIDVALIDITY gets a plain SELECT.
    stale = c.ok(f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {before}))")
    assert not any("VANISHED" in line for line in stale), stale
    c.close()

    # QRESYNC parameters need ENABLE QRESYNC first.
    d = Client(tern)
    assert d.run(f"SELECT INBOX (QRESYNC ({uidvalidity} 1))")[-1].split()[1] == "BAD"
    assert d.run("UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)")[-1].split()[1] == "BAD"
    d.close()
    a.close()


def test_recent_goes_to_one_session_and_keywords_are_announced_first(tern):
    a, b = Client(tern), Client(tern)
    a.ok("APPEND INBOX", message("first"))
    examined = b.ok("EXAMINE INBOX")
    assert "* 1 RECENT" in examined, "EXAMINE shows recent messages without claiming them"
    selected = a.ok("SELECT INBOX")
    assert "* 1 RECENT" in selected, selected
    assert "* 0 RECENT" in b.ok("SELECT INBOX"), "a message is recent in one session only"
    assert "\\Recent" in " ".join(a.ok("FETCH 1 FLAGS"))
    assert "\\Recent" not in " ".join(b.ok("FETCH 1 FLAGS"))
    status = Client(tern)
    assert "RECENT 0" in " ".join(status.ok("STATUS INBOX (RECENT)"))

    # A new keyword: FLAGS (and PERMANENTFLAGS) come before the FETCH that shows it, in the
    # session that set it and in the one that hears of it.
    stored = a.ok("STORE 1 +FLAGS ($Project)")
    flags_at = next(i for i, line in enumerate(stored) if line.startswith("* FLAGS"))
    fetch_at = next(i for i, line in enumerate(stored) if " FETCH " in line)
    assert "$Project" in stored[flags_at] and flags_at < fetch_at, stored
    heard = b.ok("NOOP")
    flags_at = next(i for i, line in enumerate(heard) if line.startswith("* FLAGS"))
    fetch_at = next(i for i, line in enumerate(heard) if " FETCH " in line)
    assert "$Project" in heard[flags_at] and flags_at < fetch_at, heard
    # \Recent cannot be stored.
    a.ok("STORE 1 +FLAGS (\\Recent)")
    assert "\\Recent" not in " ".join(b.ok("FETCH 1 FLAGS"))
    for c in (a, b, status):
        c.close()
