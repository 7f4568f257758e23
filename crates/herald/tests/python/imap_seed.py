"""Fills an IMAP account for the import test: mailboxes `Sent` and `Lists/rust` besides INBOX,
messages with flags, keywords and set INTERNALDATEs, one expunged so the UIDs have a gap, and
one message larger than a few lines (a literal that spans reads).

Usage: imap_seed.py PORT USER PASSWORD
"""
import imaplib
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
M = imaplib.IMAP4("127.0.0.1", port)
M.login(user, password)
for box in ("Sent", "Lists/rust"):
    typ, data = M.create(box)
    assert typ == "OK" or b"exists" in data[0].lower(), (box, typ, data)


def message(n, extra=""):
    return (
        "From: sender%d@example.org\r\nTo: alice@example.org\r\n"
        "Subject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\nbody %d\r\n%s" % (n, n, n, n, extra)
    ).encode()


plan = [
    ("INBOX", "(\\Seen)", '"01-Feb-2020 10:00:00 +0000"', message(1)),
    ("INBOX", "(\\Seen \\Answered $Forwarded)", '"02-Feb-2020 11:30:00 +0100"', message(2)),
    ("INBOX", "()", '"03-Feb-2020 12:00:00 +0000"', message(3)),
    ("INBOX", "(\\Flagged Work)", '"04-Feb-2020 08:15:00 -0500"', message(4, "x" * 70 + "\r\n") * 1),
    ("INBOX", "(\\Draft)", '"05-Feb-2020 09:00:00 +0000"', message(5, ("line " * 15 + "\r\n") * 4000)),
    ("Sent", "(\\Seen)", '"06-Feb-2020 09:00:00 +0000"', message(6)),
    ("Lists/rust", "()", '"07-Feb-2020 09:00:00 +0000"', message(7)),
    ("Lists/rust", "(\\Seen $Label1)", '"08-Feb-2020 09:00:00 +0000"', message(8)),
]
for box, flags, date, body in plan:
    typ, data = M.append('"%s"' % box, flags, date, body)
    assert typ == "OK", (box, typ, data)
# A gap in INBOX's UIDs: the third message goes.
M.select("INBOX")
M.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
M.expunge()
M.logout()
