"""Runs one ACL command with imaplib and prints its answer.

Usage: imap_setacl.py PORT USER PASSWORD (set MAILBOX WHO RIGHTS | delete MAILBOX WHO)
"""
import imaplib
import sys

port, user, password, verb = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
imap = imaplib.IMAP4("127.0.0.1", port)
typ, _ = imap.login(user, password)
assert typ == "OK"
if verb == "set":
    typ, data = imap.setacl(sys.argv[5], sys.argv[6], sys.argv[7])
else:
    typ, data = imap.deleteacl(sys.argv[5], sys.argv[6])
assert typ == "OK", (typ, data)
imap.logout()
print(typ)
