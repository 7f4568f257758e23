"""Tries the right password of a disabled account over IMAP (imaplib) and POP3 (poplib) and
prints each server's refusal, one line per protocol, for the account-disabling end-to-end test.

Usage: login_disabled.py IMAP_PORT POP3_PORT USER PASSWORD
"""
import imaplib
import poplib
import sys

imap_port, pop3_port = int(sys.argv[1]), int(sys.argv[2])
user, password = sys.argv[3], sys.argv[4]

imap = imaplib.IMAP4("127.0.0.1", imap_port)
try:
    imap.login(user, password)
except imaplib.IMAP4.error as e:
    text = e.args[0]
    print("imap:", text.decode() if isinstance(text, bytes) else text)
else:
    raise AssertionError("a disabled account logged in over IMAP")
imap.logout()

pop = poplib.POP3("127.0.0.1", pop3_port)
pop.user(user)
try:
    pop.pass_(password)
except poplib.error_proto as e:
    print("pop3:", e.args[0].decode())
else:
    raise AssertionError("a disabled account logged in over POP3")
pop.quit()
