"""Sends one message over SMTP with Python's smtplib (to the test's private Postfix).

Usage: smtp_send.py PORT SENDER RECIPIENT SUBJECT
"""
import smtplib
import sys

port, sender, rcpt, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
msg = "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nRelayed by Postfix into Herald.\r\n" % (
    sender, rcpt, subject)
smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
refused = smtp.sendmail(sender, [rcpt], msg)
assert not refused, refused
smtp.quit()
print("sent")
