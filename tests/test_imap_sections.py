"""FETCH body sections are exact bytes: CRLF line endings whatever the sender used, sizes that
agree with what is served, and the sections of attached (nested, even encoded) messages."""

import base64
import imaplib
import re

from ternlib import PASSWORD

USER = "bob@test.example"


def login(t):
    imap = imaplib.IMAP4("127.0.0.1", t.ports["imap"])
    imap.login(USER, PASSWORD)
    return imap


def append_raw(imap, raw: bytes) -> int:
    """APPENDs `raw` exactly as given (imaplib's append() would fix its line endings), returns
    its UID."""
    imap.literal = raw
    typ, data = imap._simple_command("APPEND", "INBOX")
    assert typ == "OK", data
    match = re.search(rb"APPENDUID \d+ (\d+)", data[-1])
    assert match, data
    return int(match.group(1))


def fetch(imap, uid: int, item: str) -> bytes:
    """The value of one FETCH item of message `uid` (a literal's bytes, or the text after the
    item's name up to the closing parenthesis)."""
    typ, data = imap.uid("FETCH", str(uid), f"({item})")
    assert typ == "OK", data
    for d in data:
        if isinstance(d, tuple):
            return d[1]
    text = data[0]
    name = item.replace(".PEEK", "").split("<")[0].encode()
    start = text.upper().index(name.upper()) + len(name)
    return text[start:].strip().removesuffix(b")")


def section(imap, uid: int, spec: str) -> bytes:
    return fetch(imap, uid, f"BODY.PEEK[{spec}]")


def test_a_message_with_bare_line_feeds_is_served_with_crlf(tern):
    raw = (b"From: Alice <alice@remote.example>\nSubject: bare\nContent-Type: multipart/mixed;"
           b" boundary=b\n\n--b\nContent-Type: text/plain\n\nline one\nline two\n--b--\n")
    crlf = raw.replace(b"\n", b"\r\n")
    imap = login(tern)
    uid = append_raw(imap, raw)
    imap.select("INBOX")
    whole = section(imap, uid, "")
    assert whole == crlf
    assert int(fetch(imap, uid, "RFC822.SIZE")) == len(whole)
    assert section(imap, uid, "HEADER") == crlf[: crlf.index(b"\r\n\r\n") + 4]
    assert section(imap, uid, "1") == b"line one\r\nline two"
    assert section(imap, uid, "1.MIME") == b"Content-Type: text/plain\r\n\r\n"
    # Partial offsets count the bytes served.
    start = crlf.index(b"line two")
    assert fetch(imap, uid, f"BODY.PEEK[]<{start}.8>") == b"line two"
    # BODYSTRUCTURE: the text part's size and line count are those of BODY[1].
    structure = fetch(imap, uid, "BODYSTRUCTURE")
    assert b'"7BIT" 18 1' in structure, structure
    imap.logout()


NESTED = (
    b"From: outer@remote.example\r\nSubject: outer\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
    b"--outer\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
    b"--outer\r\nContent-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n"
    b"From: Inner <inner@remote.example>\r\nSubject: inner\r\nX-Extra: yes\r\n"
    b"Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
    b"--inner\r\nContent-Type: text/plain\r\n\r\ninner text\r\n"
    b"--inner\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: innermost\r\n\r\ninnermost body\r\n"
    b"--inner--\r\n\r\n--outer--\r\n"
)


def test_sections_of_nested_messages(tern):
    imap = login(tern)
    uid = append_raw(imap, NESTED)
    imap.select("INBOX")
    assert section(imap, uid, "1") == b"first part"
    assert section(imap, uid, "2.MIME") == (
        b"Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n")
    assert section(imap, uid, "2.HEADER") == (
        b"From: Inner <inner@remote.example>\r\nSubject: inner\r\nX-Extra: yes\r\n"
        b"Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n")
    assert section(imap, uid, "2.HEADER.FIELDS (SUBJECT X-EXTRA)") == (
        b"Subject: inner\r\nX-Extra: yes\r\n\r\n")
    assert section(imap, uid, "2.HEADER.FIELDS.NOT (FROM CONTENT-TYPE)") == (
        b"Subject: inner\r\nX-Extra: yes\r\n\r\n")
    text = section(imap, uid, "2.TEXT")
    assert text.startswith(b"--inner\r\n") and text.endswith(b"--inner--\r\n")
    assert section(imap, uid, "2").startswith(b"From: Inner")
    assert section(imap, uid, "2.1") == b"inner text"
    assert section(imap, uid, "2.1.MIME") == b"Content-Type: text/plain\r\n\r\n"
    assert section(imap, uid, "2.2") == b"Subject: innermost\r\n\r\ninnermost body"
    assert section(imap, uid, "2.2.HEADER") == b"Subject: innermost\r\n\r\n"
    assert section(imap, uid, "2.2.TEXT") == b"innermost body"
    assert section(imap, uid, "2.2.1") == b"innermost body"
    # Sections that do not exist are empty.
    assert section(imap, uid, "1.HEADER") == b""
    assert section(imap, uid, "3") == b""
    structure = fetch(imap, uid, "BODYSTRUCTURE")
    assert b'"forwarded"' in structure and b'"inner"' in structure, structure
    assert b'"innermost"' in structure, structure

    # A message whose body is a message whose body is a message.
    raw = (b"Subject: a\r\nContent-Type: message/rfc822\r\n\r\n"
           b"Subject: b\r\nContent-Type: message/rfc822\r\n\r\n"
           b"Subject: c\r\n\r\nHello\r\n")
    uid = append_raw(imap, raw)
    imap.select("INBOX")
    assert section(imap, uid, "1").startswith(b"Subject: b\r\n")
    assert section(imap, uid, "1.HEADER") == b"Subject: b\r\nContent-Type: message/rfc822\r\n\r\n"
    assert section(imap, uid, "1.1") == b"Subject: c\r\n\r\nHello\r\n"
    assert section(imap, uid, "1.1.HEADER") == b"Subject: c\r\n\r\n"
    assert section(imap, uid, "1.1.TEXT") == b"Hello\r\n"
    assert section(imap, uid, "1.1.1") == b"Hello\r\n"
    imap.logout()


def test_sections_of_encoded_attached_messages(tern):
    inner = b"Subject: encoded inner\nContent-Type: text/plain\n\nline\nanother line\n"
    encoded = base64.encodebytes(inner)
    raw = (b"Subject: carrier\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
           b"--x\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + encoded.replace(b"\n", b"\r\n") +
           b"--x\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable"
           b"\r\n\r\nSubject: caf=C3=A9\r\n\r\na long=\r\n line\r\n--x--\r\n")
    imap = login(tern)
    uid = append_raw(imap, raw)
    imap.select("INBOX")
    # The part itself is as sent; its message is the decoded one, with CRLF line endings.
    assert section(imap, uid, "1") == encoded.replace(b"\n", b"\r\n").removesuffix(b"\r\n")
    assert section(imap, uid, "1.HEADER") == b"Subject: encoded inner\r\nContent-Type: text/plain\r\n\r\n"
    assert section(imap, uid, "1.HEADER.FIELDS (SUBJECT)") == b"Subject: encoded inner\r\n\r\n"
    assert section(imap, uid, "1.TEXT") == b"line\r\nanother line\r\n"
    assert section(imap, uid, "1.1") == b"line\r\nanother line\r\n"
    assert section(imap, uid, "2.HEADER") == "Subject: café\r\n\r\n".encode()
    assert section(imap, uid, "2.TEXT") == b"a long line"
    structure = fetch(imap, uid, "BODYSTRUCTURE")
    assert b'"encoded inner"' in structure, structure
    imap.logout()


def test_partial_offsets_past_32_bits(tern):
    raw = b"Subject: partial\r\n\r\n0123456789\r\n"
    imap = login(tern)
    uid = append_raw(imap, raw)
    imap.select("INBOX")
    assert fetch(imap, uid, "BODY.PEEK[TEXT]<2.3>") == b"234"
    # 2^32 + 2 is past the end (not offset 2), and a length of 2^32 is not 0.
    assert fetch(imap, uid, f"BODY.PEEK[TEXT]<{2**32 + 2}.3>") in (b"", b'""')
    assert fetch(imap, uid, f"BODY.PEEK[TEXT]<0.{2**32}>") == b"0123456789\r\n"
    imap.logout()


def test_envelope_groups_and_implicit_seen(tern):
    raw = (b"From: user@remote.example (Real Name)\r\n"
           b"To: group: g1@d1.example, g2@d2.example;, group2: g3@d3.example;\r\n"
           b"Cc: empty:;, other: (comment) ;\r\nSubject: groups\r\n\r\nbody\r\n")
    imap = login(tern)
    uid = append_raw(imap, raw)
    imap.select("INBOX")
    envelope = fetch(imap, uid, "ENVELOPE")
    assert (b'((NIL NIL "group" NIL)(NIL NIL "g1" "d1.example")(NIL NIL "g2" "d2.example")'
            b'(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.example")(NIL NIL NIL NIL))'
            ) in envelope, envelope
    assert (b'((NIL NIL "empty" NIL)(NIL NIL NIL NIL)(NIL NIL "other" NIL)(NIL NIL NIL NIL))'
            ) in envelope, envelope
    # BODY[TEXT] (not PEEK) sets \Seen, and the response says so.
    typ, data = imap.uid("FETCH", str(uid), "(BODY[TEXT])")
    assert typ == "OK"
    assert b"\\Seen" in b"".join(d[0] + d[1] if isinstance(d, tuple) else d for d in data), data
    imap.logout()


def append_literal8(t, raw: bytes):
    """APPEND with an RFC 3516 literal8 (`~{n}`), which imaplib cannot send; returns the
    tagged response line."""
    import socket
    with socket.create_connection(("127.0.0.1", t.ports["imap"]), timeout=30) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(f'a LOGIN {USER} "{PASSWORD}"\r\n'.encode())
        while not (line := f.readline()).startswith(b"a "):
            pass
        assert line.startswith(b"a OK"), line
        s.sendall(b"b APPEND INBOX ~{%d}\r\n" % len(raw))
        assert f.readline().startswith(b"+"), "no continuation"
        s.sendall(raw + b"\r\n")
        while not (line := f.readline()).startswith(b"b "):
            pass
        s.sendall(b"c LOGOUT\r\n")
        return line


def test_binary_fetch_and_append(tern):
    imap = login(tern)
    assert "BINARY" in imap.capabilities
    # A part sent `binary` keeps its exact bytes (NUL, bare CR and LF) for BINARY, and is
    # stored base64 encoded, so BODY[] stays mail with CRLF lines.
    content = b"\x00-\xe4\n\r\n\n"
    raw = (b"Subject: binary\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
           + content + b"\r\n--b\r\nContent-Type: text/plain\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nau lait\r\n--b--\r\n")
    reply = append_literal8(tern, raw)
    assert reply.startswith(b"b OK"), reply
    uid = int(re.search(rb"APPENDUID \d+ (\d+)", reply).group(1))
    imap.select("INBOX")
    assert section(imap, uid, "1") == base64.b64encode(content)
    assert b"Content-Transfer-Encoding: base64" in section(imap, uid, "1.MIME")
    assert fetch(imap, uid, "BINARY.PEEK[1]") == content
    assert fetch(imap, uid, "BINARY.SIZE[1]") == str(len(content)).encode()
    assert fetch(imap, uid, "BINARY.PEEK[1]<1.3>") == content[1:4]
    assert fetch(imap, uid, "BINARY.PEEK[2]") == "café au lait".encode()
    whole = fetch(imap, uid, "BINARY.PEEK[]")
    assert content in whole and "café au lait".encode() in whole
    assert whole.count(b"Content-Transfer-Encoding: binary") == 2
    assert int(fetch(imap, uid, "BINARY.SIZE[]")) == len(whole)
    # A part whose encoding is unknown cannot be decoded (RFC 3516 [UNKNOWN-CTE]).
    uid = append_raw(imap, b"Subject: x\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nabc\r\n")
    imap.select("INBOX")
    typ, data = imap.uid("FETCH", str(uid), "(BINARY.PEEK[1])")
    assert typ == "NO" and b"[UNKNOWN-CTE]" in data[0], (typ, data)
    assert section(imap, uid, "1") == b"abc\r\n"
    imap.logout()
