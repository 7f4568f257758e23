"""TLS with Python's stock clients: LMTP STARTTLS, POP3 STLS on a listener that refuses
passwords in clear text, and implicit-TLS POP3 (POP3S).

Usage: tls_sessions.py LMTP_PORT POP3_PORT POP3S_PORT USER PASSWORD
The certificate is self-signed for the test, so verification is off.
"""
import poplib
import smtplib
import ssl
import sys

lmtp_port, pop3_port, pop3s_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
user, password = sys.argv[4], sys.argv[5]
ctx = ssl._create_unverified_context()

lmtp = smtplib.LMTP("127.0.0.1", lmtp_port)
code, caps = lmtp.ehlo("client.example.net")
assert b"STARTTLS" in caps, caps
code, reply = lmtp.starttls(context=ctx)
assert code == 220, (code, reply)
code, caps = lmtp.ehlo("client.example.net")
assert code == 250 and b"STARTTLS" not in caps, caps
refused = lmtp.sendmail("tls@example.net", [user + "@example.org"],
                        "Subject: over TLS\r\n\r\nencrypted\r\n")
assert not refused, refused
lmtp.quit()

pop = poplib.POP3("127.0.0.1", pop3_port)
caps = pop.capa()
assert "STLS" in caps and "USER" not in caps, caps
try:
    pop.user(user)
    raise SystemExit("USER accepted in clear text")
except poplib.error_proto as e:
    assert b"[AUTH]" in e.args[0], e
pop.stls(context=ctx)
assert "USER" in pop.capa()
pop.user(user)
pop.pass_(password)
count, _ = pop.stat()
assert count == 1, count
pop.quit()

pops = poplib.POP3_SSL("127.0.0.1", pop3s_port, context=ctx)
pops.user(user)
pops.pass_(password)
assert pops.stat()[0] == 1
pops.quit()
print("ok")
