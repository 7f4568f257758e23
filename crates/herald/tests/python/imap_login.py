"""Logs in over IMAP with Python's imaplib, selects INBOX, fetches its flags and logs out;
with a wrong password, checks that LOGIN is refused. For the metrics end-to-end test.

Usage: imap_login.py PORT USER PASSWORD [--wrong]
"""
import imaplib
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
wrong = "--wrong" in sys.argv[4:]

imap = imaplib.IMAP4("127.0.0.1", port)
if wrong:
    try:
        imap.login(user, password)
    except imaplib.IMAP4.error:
        print("refused")
    else:
        raise AssertionError("a wrong password logged in")
    imap.logout()
    sys.exit(0)

typ, _ = imap.login(user, password)
assert typ == "OK", typ
typ, data = imap.select("INBOX")
assert typ == "OK", (typ, data)
typ, data = imap.fetch("1:*", "(FLAGS)")
assert typ == "OK", (typ, data)
typ, _ = imap.logout()
assert typ == "BYE", typ
print("ok")
