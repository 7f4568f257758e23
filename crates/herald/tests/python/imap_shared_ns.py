"""The "Shared" namespace through imaplib: an administrator runs a mailbox no user owns.

Usage: imap_shared_ns.py PORT

root (an administrator) creates #shared/support, gives bob `lrsi` and everyone `lr`; bob
finds it through NAMESPACE and LIST, appends a ticket and reads it; carol reads it too but
is refused APPEND; nobody but root may create in the namespace. Every expectation is
asserted here; the JSON printed at the end is what the Rust test checks the events against.
"""
import imaplib
import json
import sys

from imap_checks import ok, refused

port = int(sys.argv[1])
out = {}
for name in ("GETMETADATA", "SETMETADATA"):
    imaplib.Commands[name] = ("AUTH", "SELECTED")


def metadata(imap, *args):
    """GETMETADATA's METADATA responses, as raw bytes."""
    typ, data = imap._simple_command("GETMETADATA", *args)
    assert typ == "OK", (typ, data)
    _, meta = imap._untagged_response(typ, data, "METADATA")
    return b" ".join(m if isinstance(m, bytes) else b"".join(m) for m in meta if m)


def login(user):
    c = imaplib.IMAP4("127.0.0.1", port)
    ok(c.login(user, user + "-pw"))
    return c


root = login("root")
ns = ok(root.namespace())[0].decode()
# personal, other users, shared — in that order (RFC 2342).
assert ns.endswith('(("#shared/" "/"))'), ns
ok(root.create("#shared/support"))
ok(root.setacl("#shared/support", "bob", "lrsi"))
ok(root.setacl("#shared/support", "anyone", "lr"))
out["acl"] = ok(root.getacl("#shared/support"))[0].decode()
typ, data = root._simple_command(
    "SETMETADATA", "#shared/support", '(/shared/comment "Printer and desk tickets")'
)
assert typ == "OK", (typ, data)

bob = login("bob")
out["create_refused"] = refused(bob.create, "#shared/bob-only")
assert "NOPERM" in out["create_refused"], out
listed = [l.decode() for l in ok(bob.list('""', "*"))]
assert any(l.endswith('"#shared/support"') or l.endswith(" #shared/support") for l in listed), listed
assert any("\\Noselect" in l and l.rstrip('"').endswith("#shared") for l in listed), listed
out["bob_list"] = listed
ok(bob.append("#shared/support", None, None, b"Subject: printer\r\n\r\nit is on fire\r\n"))
ok(bob.select("#shared/support"))
body = ok(bob.fetch("1", "(BODY[])"))[0][1]
assert b"it is on fire" in body, body
bob.logout()

carol = login("carol")
out["carol_rights"] = ok(carol.myrights("#shared/support"))[0].decode()
assert out["carol_rights"].endswith(" lr"), out
try:
    carol.select("#shared/support")
    raise AssertionError("carol, without s/w/t/e, got the shared mailbox read-write")
except imaplib.IMAP4.readonly:
    carol.is_readonly = True
body = ok(carol.fetch("1", "(BODY.PEEK[])"))[0][1]
assert b"it is on fire" in body, body
out["append_refused"] = refused(
    carol.append, "#shared/support", None, None, b"Subject: me too\r\n\r\nx\r\n"
)
assert "NOPERM" in out["append_refused"], out
# Mailbox entries follow the ACL (RFC 5464 §3.4): carol reads them with `lr`, keeps a
# private note of her own, and may not change a shared entry without `w`.
assert b"Printer and desk tickets" in metadata(carol, "#shared/support", "/shared/comment")
typ, data = carol._simple_command("SETMETADATA", "#shared/support", '(/private/comment "mine")')
assert typ == "OK", (typ, data)
typ, data = carol._simple_command("SETMETADATA", "#shared/support", '(/shared/comment "x")')
assert typ == "NO" and b"NOPERM" in data[0], (typ, data)
carol.logout()
bob = login("bob")
assert b"mine" not in metadata(bob, "#shared/support", "/private/comment")
bob.logout()

root.select("#shared/support")
assert ok(root.search(None, "ALL"))[0].split() == [b"1"]
root.logout()
print(json.dumps(out))
