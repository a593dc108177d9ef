"""IMAP SORT, THREAD, ESEARCH (MIN MAX COUNT) and SEARCHRES ($) with Python's imaplib."""

import pytest

from ternlib import imap_with_messages

USER = "carol@test.example"

# (internal date, raw message), appended in this order.
MESSAGES = [
    ('"01-Jan-2020 10:00:00 +0000"',
     "Date: Wed, 01 Jan 2020 12:00:00 +0200\r\n"
     "From: Zed <zed@example.org>\r\nTo: b@example.org\r\n"
     "Subject: hello\r\nMessage-ID: <1@x>\r\n\r\nbody one\r\n"),
    ('"02-Jan-2020 10:00:00 +0000"',
     "Date: Wed, 01 Jan 2020 09:00:00 +0000\r\n"
     "From: amy@example.org\r\nTo: a@example.org\r\n"
     "Subject: Re: [list] hello\r\nMessage-ID: <2@x>\r\nReferences: <1@x>\r\n\r\nbody two\r\n"),
    ('"03-Jan-2020 10:00:00 +0000"',
     "From: Bob <bob@example.org>\r\nTo: c@example.org\r\n"
     "Subject: another\r\nMessage-ID: <3@x>\r\n\r\nbody three, a longer one\r\n"),
    ('"04-Jan-2020 10:00:00 +0000"',
     "Date: Sat, 04 Jan 2020 10:00:00 +0000\r\n"
     "From: amy@example.org\r\nSubject: Fwd: hello (fwd)\r\n"
     "Message-ID: <4@x>\r\nIn-Reply-To: <2@x>\r\n\r\nfour\r\n"),
]


@pytest.fixture(scope="module")
def imap(tmp_path_factory):
    with imap_with_messages(tmp_path_factory.mktemp("sort") / "node", USER, MESSAGES) as client:
        yield client


def esearch(client, *args):
    """Runs a command answered by ESEARCH; returns its status and the ESEARCH data."""
    typ, dat = client._simple_command(*args)
    return typ, client._untagged_response(typ, dat, "ESEARCH")[1]


def numbers(data):
    return [int(n) for n in data[0].split()]


def test_capabilities(imap):
    caps = imap.capabilities
    for cap in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=REFERENCES",
                "THREAD=ORDEREDSUBJECT", "ESEARCH", "SEARCHRES"):
        assert cap in caps, cap


@pytest.mark.parametrize("criteria,expected", [
    ("(ARRIVAL)", [1, 2, 3, 4]),
    ("(REVERSE ARRIVAL)", [4, 3, 2, 1]),
    ("(DATE)", [2, 1, 3, 4]),           # 1 is 10:00 UTC; 3 has no Date: (3 Jan)
    ("(SUBJECT)", [3, 1, 2, 4]),         # another < hello (ties by number)
    ("(FROM)", [2, 4, 3, 1]),            # amy, amy, bob, zed
    ("(DISPLAYFROM)", [2, 4, 3, 1]),     # amy@..., amy@..., Bob, Zed
    ("(TO)", [4, 2, 1, 3]),              # none first
    ("(SIZE)", [3, 1, 4, 2]),           # 115, 139, 140, 160 bytes or so
    ("(SUBJECT REVERSE DATE)", [3, 4, 1, 2]),
])
def test_sort(imap, criteria, expected):
    typ, data = imap.sort(criteria, "UTF-8", "ALL")
    assert typ == "OK", data
    assert numbers(data) == expected


def test_uid_sort_and_search_keys(imap):
    typ, data = imap.uid("SORT", "(REVERSE ARRIVAL)", "US-ASCII", "NOT", "FROM", "amy")
    assert typ == "OK"
    assert len(numbers(data)) == 2
    typ, data = imap.sort("(SUBJECT)", "ISO-8859-2", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]


def test_thread(imap):
    typ, data = imap.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK"
    assert data[0] == b"(1 2 4)(3)"
    typ, data = imap.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert typ == "OK"
    assert data[0] == b"(2 (1)(4))(3)"


def test_esearch_min_max_count(imap):
    typ, data = esearch(imap, "UID", "SEARCH", "RETURN (MIN MAX COUNT)", "ALL")
    assert typ == "OK"
    assert data[0].endswith(b"UID MIN 1 MAX 4 COUNT 4")
    typ, data = esearch(imap, "SEARCH", "RETURN", "(COUNT)", "FROM", "nobody")
    assert typ == "OK" and data[0].endswith(b"COUNT 0")
    typ, data = esearch(imap, "SORT", "RETURN (MIN ALL)", "(REVERSE DATE)", "UTF-8", "ALL")
    assert data[0].endswith(b"MIN 4 ALL 4,3,1:2")


def test_searchres(imap):
    typ, data = imap.search(None, "RETURN", "(SAVE)", "FROM", "amy")
    assert typ == "OK" and data == [None]
    typ, data = imap.fetch("$", "(UID)")
    assert typ == "OK"
    assert [d.split()[0] for d in data] == [b"2", b"4"]
    typ, data = imap.search(None, "$", "SUBJECT", "hello")
    assert numbers(data) == [2, 4]
    typ, data = imap.uid("SEARCH", "UID", "$")
    assert numbers(data) == [2, 4]
    typ, data = imap.search(None, "RETURN", "(SAVE MIN)", "ALL")
    typ, data = imap.uid("FETCH", "$", "(FLAGS)")
    assert len(data) == 1 and data[0].startswith(b"1 ")
    imap.select("INBOX")
    typ, data = imap.search(None, "$")
    assert typ == "OK" and numbers(data) == [], "SELECT forgets $"
