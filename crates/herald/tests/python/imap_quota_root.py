"""An administrator sets another user's quota root by name with imaplib.

Usage: imap_quota_root.py PORT

root (an admin) sets `user/alice` to 1000 KB; alice then sees the limit on her own root, and
bob, who is no admin, is refused the same SETQUOTA with NOPERM.
"""
import imaplib
import sys

port = int(sys.argv[1])
root = imaplib.IMAP4("127.0.0.1", port)
assert root.login("root", "root-pw")[0] == "OK"
typ, data = root.setquota("user/alice", "(STORAGE 1000)")
assert typ == "OK", (typ, data)
assert data[0] == b"user/alice (STORAGE 0 1000)", data
typ, data = root.getquota("user/alice")
assert typ == "OK" and data[0] == b"user/alice (STORAGE 0 1000)", (typ, data)
root.logout()

alice = imaplib.IMAP4("127.0.0.1", port)
assert alice.login("alice", "alice-pw")[0] == "OK"
typ, data = alice.getquotaroot("INBOX")
assert typ == "OK", (typ, data)
assert data[1][0] == b'"" (STORAGE 0 1000)', data
alice.logout()

bob = imaplib.IMAP4("127.0.0.1", port)
assert bob.login("bob", "bob-pw")[0] == "OK"
typ, data = bob.setquota("user/alice", "(STORAGE 1)")
assert typ == "NO" and b"NOPERM" in data[0], (typ, data)
bob.logout()
print("done")
