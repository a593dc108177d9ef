"""IMAP SEARCH with Python's imaplib: dates by day (sent and internal), address forms, encoded
words and UTF-8 search strings, CHARSET, TEXT over every header field, and the \\Recent keys."""


import pytest

from ternlib import imap_with_messages

USER = "bob@test.example"

# (internal date as APPENDed, raw message). Internal dates are shown, and compared, in UTC.
MESSAGES = [
    # 1: sent 25 March as written; 24 March in UTC.
    ('"24-Mar-2007 22:00:00 +0000"',
     "Date: Sun, 25 Mar 2007 00:30:00 +0300\r\n"
     "From: RealFrom <user-from@domain.org>\r\n"
     "To: user-to@domain.org\r\n"
     "Subject: =?UTF-8?Q?Caf=C3=A9_cr=C3=A8me?=\r\n"
     "\r\n"
     "asdfghjkl zxcvbnm\r\n"),
    # 2: no Date: at all, so its internal date (26 March) stands for the sent date.
    ('"26-Mar-2007 12:00:00 +0000"',
     "From: <user-from (comment)@ (comment) domain.org>\r\n"
     "X-Header: qwertyuiop\r\n"
     "Subject: plain\r\n"
     "\r\n"
     "nothing here\r\n"),
    # 3: an odd but readable Date: (no weekday, obsolete two-digit year, named zone, comment).
    ('"1-Jan-2020 00:00:00 +0000"',
     "Date: 27 Mar 07 23:59 EST (Eastern)\r\n"
     "From: =?ISO-8859-1?Q?J=FCrgen?= <jm@example.org>\r\n"
     "To: groupname: groupuser1@domain.org, groupuser2@domain.org;\r\n"
     "Subject: Gr\u00fc\u00dfe\r\n"
     "\r\n"
     "qwertyuiop body\r\n"),
]


@pytest.fixture(scope="module")
def imap(tmp_path_factory):
    with imap_with_messages(tmp_path_factory.mktemp("search") / "node", USER, MESSAGES) as client:
        yield client


def search(client, *criteria, charset=None, literal=None):
    client.literal = literal
    typ, data = client.search(charset, *criteria)
    assert typ == "OK", (criteria, data)
    return [int(n) for n in data[0].split()]


@pytest.mark.parametrize("criteria,expected", [
    ("SENTON 25-Mar-2007", [1]),
    ("SENTON 24-Mar-2007", []),
    ("SENTBEFORE 25-Mar-2007", []),
    ("SENTBEFORE 26-Mar-2007", [1]),
    ("SENTSINCE 26-Mar-2007", [2, 3]),
    ("SENTON 26-Mar-2007", [2]),
    ("SENTON 27-Mar-2007", [3]),
    ("NOT SENTON 25-Mar-2007", [2, 3]),
    ("ON 24-Mar-2007", [1]),
    ("BEFORE 25-Mar-2007", [1]),
    ("SINCE 25-Mar-2007", [2, 3]),
    ("SINCE 1-Jan-2020", [3]),
])
def test_dates_compare_by_day(imap, criteria, expected):
    assert search(imap, criteria) == expected


@pytest.mark.parametrize("criteria,expected", [
    ("FROM user-from@domain.org", [1, 2]),
    ("FROM realfrom", [1]),
    ("FROM ser-fro", [1, 2]),
    ("TO groupname", [3]),
    ("TO groupuser2", [3]),
    ("TO groupuser4", []),
    ('HEADER X-Header ""', [2]),
    ("TEXT qwertyuiop", [2, 3]),
    ("BODY qwertyuiop", [3]),
    ("TEXT asdfghjkl", [1]),
    ("SUBJECT =?UTF-8?Q?Caf", [1]),
])
def test_headers_addresses_and_text(imap, criteria, expected):
    assert search(imap, criteria) == expected


def test_utf8_strings_match_decoded_words_in_any_case(imap):
    assert search(imap, "SUBJECT", charset="UTF-8", literal="CAF\u00c9 cr\u00e8me".encode()) == [1]
    assert search(imap, "FROM", charset="UTF-8", literal="j\u00fcrgen".encode()) == [3]
    assert search(imap, "SUBJECT", charset="UTF-8", literal="GR\u00dc\u00dfE".encode()) == [3]
    assert search(imap, "TEXT", charset="UTF-8", literal="caf\u00e9".encode()) == [1]
    assert search(imap, "SUBJECT cafe", charset="US-ASCII") == []


def test_an_unknown_charset_is_refused_with_the_supported_ones(imap):
    imap.literal = "caf\u00e9".encode("latin-1")
    typ, data = imap.search("ISO-8859-1", "SUBJECT")
    assert typ == "NO", data
    assert b"[BADCHARSET (UTF-8 US-ASCII)]" in data[0]
    # The session carries on.
    assert search(imap, "ALL") == [1, 2, 3]


def test_recent_keys_are_accepted(imap):
    for key in ("RECENT", "NEW", "OLD", "NOT RECENT", "OR NEW SEEN"):
        typ, _ = imap.search(None, key)
        assert typ == "OK", key
