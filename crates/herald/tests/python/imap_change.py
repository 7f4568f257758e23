"""Changes a mailbox the way another client would (test fixture for the sync tests): adds a
flag to one message, expunges another, appends a new one.

Usage: imap_change.py PORT USER PASSWORD MAILBOX FLAG_UID FLAG EXPUNGE_UID MESSAGE_ID

Prints the UID the new message got.
"""
import imaplib
import re
import sys

port, user, password, mailbox = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
flag_uid, flag, expunge_uid, mid = sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8]
M = imaplib.IMAP4("127.0.0.1", port)
M.login(user, password)
typ, data = M.select('"%s"' % mailbox)
assert typ == "OK", (mailbox, typ, data)
typ, data = M.uid("STORE", flag_uid, "+FLAGS.SILENT", "(%s)" % flag)
assert typ == "OK", (typ, data)
typ, data = M.uid("STORE", expunge_uid, "+FLAGS.SILENT", r"(\Deleted)")
assert typ == "OK", (typ, data)
typ, data = M.uid("EXPUNGE", expunge_uid)
assert typ == "OK", (typ, data)
msg = ("From: other@example.net\r\nSubject: added on the server\r\nMessage-ID: %s\r\n\r\nnew\r\n" % mid).encode()
typ, data = M.append('"%s"' % mailbox, None, None, msg)
assert typ == "OK", (typ, data)
uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
M.logout()
print(uid)
