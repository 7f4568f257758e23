"""After `imap_parity.py` and a restart of Herald: no message of carol's INBOX is \\Recent any
more (the claim was committed), and STATUS agrees.

Usage: imap_recent_after_restart.py PORT
"""
import imaplib
import sys

c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
assert c.login("carol", "carol-pw")[0] == "OK"
typ, data = c.status("INBOX", "(MESSAGES RECENT)")
assert typ == "OK" and data == [b"INBOX (MESSAGES 4 RECENT 0)"], (typ, data)
assert c.select("INBOX")[0] == "OK"
assert c.untagged_responses.pop("RECENT") == [b"0"]
assert c.search(None, "RECENT") == ("OK", [b""])
c.logout()
print("done")
