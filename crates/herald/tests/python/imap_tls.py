"""IMAP over TLS with imaplib: STARTTLS on a listener that refuses clear-text logins
(LOGINDISABLED), and implicit TLS (IMAPS).

Usage: imap_tls.py IMAP_PORT IMAPS_PORT USER PASSWORD
The certificate is self-signed for the test, so verification is off.
"""
import imaplib
import ssl
import sys

port, tls_port, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl._create_unverified_context()

M = imaplib.IMAP4("127.0.0.1", port)
assert "LOGINDISABLED" in M.capabilities and "STARTTLS" in M.capabilities, M.capabilities
assert "AUTH=PLAIN" not in M.capabilities, M.capabilities
typ, data = M._simple_command("LOGIN", user, password)
assert typ == "NO" and b"PRIVACYREQUIRED" in data[0], (typ, data)
typ, data = M.starttls(ssl_context=ctx)
assert typ == "OK", (typ, data)
assert "LOGINDISABLED" not in M.capabilities and "STARTTLS" not in M.capabilities, M.capabilities
assert "AUTH=PLAIN" in M.capabilities, M.capabilities
typ, data = M.login(user, password)
assert typ == "OK", (typ, data)
typ, data = M.select("INBOX")
assert typ == "OK", (typ, data)
M.logout()

S = imaplib.IMAP4_SSL("127.0.0.1", tls_port, ssl_context=ctx)
assert "LOGINDISABLED" not in S.capabilities and "STARTTLS" not in S.capabilities, S.capabilities
S.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (user, password)).encode())
typ, data = S.list()
assert typ == "OK" and data == [b'(\\HasNoChildren) "/" INBOX'], data
S.logout()
print("ok")
