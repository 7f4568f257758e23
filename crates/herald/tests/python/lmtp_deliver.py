"""Delivers one message over LMTP with Python's smtplib.LMTP and checks every reply.

Usage: lmtp_deliver.py PORT SENDER RCPT... -- EXPECTED_RCPT_CODE... -- EXPECTED_DATA_CODE...

LMTP answers DATA once per accepted recipient; smtplib.LMTP.data() reads the first answer, and
getreply() reads the others, so the script checks each one against what the test expects.
"""
import smtplib
import sys

args = sys.argv[1:]
port = int(args[0])
sender = args[1]
first = args.index("--")
second = args.index("--", first + 1)
rcpts = args[2:first]
rcpt_codes = [int(c) for c in args[first + 1:second]]
data_codes = [int(c) for c in args[second + 1:]]

msg = (
    "From: Bob <%s>\r\nTo: %s\r\nSubject: Herald end-to-end\r\n"
    "Message-ID: <e2e-1@example.net>\r\n\r\n"
    ".a line that starts with a dot\r\nHello from smtplib.\r\n" % (sender, ", ".join(rcpts))
)

lmtp = smtplib.LMTP("127.0.0.1", port)
code, caps = lmtp.ehlo("client.example.net")
assert code == 250, (code, caps)
for cap in (b"PIPELINING", b"ENHANCEDSTATUSCODES", b"8BITMIME", b"SIZE"):
    assert cap in caps, (cap, caps)
code, reply = lmtp.mail(sender, ["SIZE=%d" % len(msg)])
assert code == 250, (code, reply)
for rcpt, expected in zip(rcpts, rcpt_codes):
    code, reply = lmtp.rcpt(rcpt)
    assert code == expected, (rcpt, code, reply)
accepted = sum(1 for c in rcpt_codes if c == 250)
code, reply = lmtp.data(msg)
codes = [code]
for _ in range(accepted - 1):
    code, reply = lmtp.getreply()
    codes.append(code)
assert codes == data_codes, (codes, data_codes)
lmtp.quit()
print("ok", codes)
