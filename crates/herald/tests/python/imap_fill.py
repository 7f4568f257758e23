"""Appends N distinct small messages to a mailbox with imaplib (test fixture for mbsync).

Usage: imap_fill.py PORT USER PASSWORD MAILBOX N
"""
import imaplib
import sys

port, user, password, mailbox, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
M = imaplib.IMAP4("127.0.0.1", port)
M.login(user, password)
for i in range(n):
    msg = (
        "From: sender%d@example.net\r\nTo: %s@example.org\r\nSubject: message %d\r\n"
        "Message-ID: <fill-%d@example.net>\r\n\r\nbody of message %d\r\n" % (i, user, i, i, i)
    ).encode()
    flags = r"(\Seen)" if i % 3 == 0 else None
    typ, data = M.append(mailbox, flags, None, msg)
    assert typ == "OK", (i, typ, data)
M.logout()
print(n)
