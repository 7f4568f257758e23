"""Appends N distinct small messages to a mailbox with imaplib (test fixture for mbsync and
offlineimap).

Usage: imap_fill.py PORT USER PASSWORD MAILBOX N [varied]

Without `varied`, every third message (i % 3 == 0) is \\Seen and the Message-ID is
<fill-I@example.net>. With it, message I of the mailbox gets \\Seen if I % 3 == 0, \\Flagged if
I % 5 == 0, \\Answered if I % 7 == 0 and \\Draft if I % 11 == 0, and its Message-ID names the
mailbox: <fill-MAILBOX-I@example.net>, with "/" in the name as ".".
"""
import imaplib
import sys

port, user, password, mailbox, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
varied = sys.argv[6:] == ["varied"]
M = imaplib.IMAP4("127.0.0.1", port)
M.login(user, password)
for i in range(n):
    if varied:
        mid = "fill-%s-%d" % (mailbox.replace("/", "."), i)
        names = [f for f, d in (("\\Seen", 3), ("\\Flagged", 5), ("\\Answered", 7), ("\\Draft", 11)) if i % d == 0]
        flags = "(%s)" % " ".join(names) if names else None
    else:
        mid = "fill-%d" % i
        flags = r"(\Seen)" if i % 3 == 0 else None
    msg = (
        "From: sender%d@example.net\r\nTo: %s@example.org\r\nSubject: message %d\r\n"
        "Message-ID: <%s@example.net>\r\n\r\nbody of message %d\r\n" % (i, user, i, mid, i)
    ).encode()
    typ, data = M.append(mailbox, flags, None, msg)
    assert typ == "OK", (i, typ, data)
M.logout()
print(n)
