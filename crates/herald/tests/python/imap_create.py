"""Creates mailboxes with imaplib, each optionally with a special-use attribute (RFC 6154
CREATE-SPECIAL-USE), as a fixture for the tests that drive other clients.

Usage: imap_create.py PORT USER PASSWORD NAME[=USE]...   e.g. Kept=\\Archive Lists
"""
import imaplib
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
M = imaplib.IMAP4("127.0.0.1", port)
M.login(user, password)
for arg in sys.argv[4:]:
    name, _, use = arg.partition("=")
    quoted = '"%s"' % name
    if use:
        typ, data = M._simple_command("CREATE", quoted, "(USE (%s))" % use)
    else:
        typ, data = M.create(quoted)
    assert typ == "OK", (arg, typ, data)
    typ, data = M.subscribe(quoted)
    assert typ == "OK", (arg, typ, data)
M.logout()
print(len(sys.argv) - 4)
