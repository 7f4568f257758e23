"""Shares a mailbox between two users with imaplib's ACL helpers and prints what each saw.

Usage: imap_acl.py PORT

alice creates Team with one message and grants bob `lr`; bob finds it through NAMESPACE and
LIST, selects it and reads the message, and is refused STORE and APPEND with NOPERM; alice
adds `i`, bob appends; alice revokes, and bob no longer sees it. Every expectation is
asserted here; the JSON printed at the end is what the Rust test checks the events against.
"""
import imaplib
import json
import sys

from imap_checks import ok, refused

port = int(sys.argv[1])
out = {}


alice = imaplib.IMAP4("127.0.0.1", port)
ok(alice.login("alice", "alice-pw"))
caps = alice.capabilities
assert "ACL" in caps and "RIGHTS=TEXK" in caps, caps  # imaplib upper-cases them
ok(alice.create("Team"))
ok(alice.append("Team", None, None, b"Subject: plans\r\n\r\nthe team's plans\r\n"))
ok(alice.setacl("Team", "bob", "lr"))
acl = ok(alice.getacl("Team"))
out["acl_after_grant"] = acl[0].decode()

bob = imaplib.IMAP4("127.0.0.1", port)
ok(bob.login("bob", "bob-pw"))
ns = ok(bob.namespace())[0].decode()
assert '(("user/" "/"))' in ns, ns
listed = [l.decode() for l in ok(bob.list('""', "*"))]
assert any(l.endswith('"user/alice/Team"') or l.endswith(" user/alice/Team") for l in listed), listed
out["bob_list"] = listed
rights = ok(bob.myrights("user/alice/Team"))[0].decode()
assert rights.endswith(" lr"), rights
# RFC 4314 §4: with none of s, w, t and e, SELECT opens the mailbox read-only; imaplib
# reports that as its `readonly` exception and then treats the selection as read-only.
try:
    bob.select("user/alice/Team")
    raise AssertionError("a mailbox bob may not change was selected read-write")
except imaplib.IMAP4.readonly:
    bob.is_readonly = True
body = ok(bob.fetch("1", "(RFC822)"))[0][1]
assert b"the team's plans" in body, body
out["store_refused"] = refused(bob.store, "1", "+FLAGS", "(\\Flagged)")
assert "read-only" in out["store_refused"].lower(), out
out["append_refused"] = refused(
    bob.append, "user/alice/Team", None, None, b"Subject: from bob\r\n\r\nhi\r\n"
)
assert "NOPERM" in out["append_refused"], out
out["getacl_refused"] = refused(bob.getacl, "user/alice/Team")
assert "NOPERM" in out["getacl_refused"], out
# The message stayed unseen: bob has no `s` right.
flags = ok(bob.fetch("1", "(FLAGS)"))[0].decode()
assert "\\Seen" not in flags, flags
ok(bob.close())

ok(alice.setacl("Team", "bob", "+i"))
ok(bob.append("user/alice/Team", None, None, b"Subject: from bob\r\n\r\nhi\r\n"))
ok(alice.select("Team"))
assert int(ok(alice.search(None, "ALL"))[0].split()[-1]) == 2

ok(alice.deleteacl("Team", "bob"))
listed = [l.decode() for l in ok(bob.list('""', "*"))]
assert not any("user/alice" in l for l in listed), listed
out["select_after_revoke"] = refused(bob.select, "user/alice/Team")
assert "NONEXISTENT" in out["select_after_revoke"], out
out["myrights_after_revoke"] = refused(bob.myrights, "user/alice/Team")
bob.logout()
alice.logout()
print(json.dumps(out))
