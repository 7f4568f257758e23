"""Delivers N messages to one user over one LMTP connection (a bulk load for outage tests).

Usage: lmtp_bulk.py PORT USER N
"""
import smtplib
import sys

port, user, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
lmtp = smtplib.LMTP("127.0.0.1", port)
lmtp.ehlo("bulk.example.net")
for i in range(n):
    refused = lmtp.sendmail("bulk@example.net", [user + "@example.org"],
                            "Subject: bulk %d\r\n\r\nmessage %d\r\n" % (i, i))
    assert not refused, refused
lmtp.quit()
print(n)
