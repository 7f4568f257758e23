"""Prints what a mailbox holds, one message a line: UID, flags, Message-ID (test fixture for
the clients' sync tests, which compare it with their local copy).

Usage: imap_dump.py PORT USER PASSWORD MAILBOX

Output lines: `UID FLAG,FLAG MESSAGE-ID` (flags sorted; `-` for none).
"""
import email
import imaplib
import re
import sys

port, user, password, mailbox = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
M = imaplib.IMAP4("127.0.0.1", port)
M.login(user, password)
typ, data = M.select('"%s"' % mailbox, readonly=True)
assert typ == "OK", (mailbox, typ, data)
typ, data = M.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
assert typ == "OK", (typ, data)
for item in data:
    if not isinstance(item, tuple):
        continue
    meta, header = item
    uid = re.search(rb"UID (\d+)", meta).group(1).decode()
    flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()
    mid = email.message_from_bytes(header)["Message-ID"]
    print(uid, ",".join(sorted(flags)) or "-", mid)
M.logout()
