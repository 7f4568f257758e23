"""URLAUTH (RFC 4467) with Python's imaplib, which has no URLAUTH commands of its own: they go
as raw commands through imaplib's internals (_simple_command, _untagged_response).

Usage:
  imap_urlauth.py PORT flows            alice/alice-pw authorizes, bob/bob-pw and root/root-pw
                                        fetch; expiry, tampering, access identifiers, RESETKEY
  imap_urlauth.py PORT fetch USER PW URL    prints the URLFETCH data in hex, or NIL
  imap_urlauth.py PORT body USER PW MAILBOX UID   prints BODY.PEEK[] of a message in hex
  imap_urlauth.py PORT reset USER PW        RESETKEY of all the user's mailboxes
Prints "done" after `flows`.
"""
import imaplib
import sys

for name in ("GENURLAUTH", "URLFETCH", "RESETKEY"):
    imaplib.Commands[name] = ("AUTH", "SELECTED")

HOST = "mail.example.org"
port = int(sys.argv[1])
mode = sys.argv[2]


def login(user, pw):
    m = imaplib.IMAP4("127.0.0.1", port)
    typ, _ = m.login(user, pw)
    assert typ == "OK", typ
    return m


def quoted(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def genurlauth(m, rump, mechanism="INTERNAL"):
    typ, data = m._simple_command("GENURLAUTH", quoted(rump), mechanism)
    typ, data = m._untagged_response(typ, data, "GENURLAUTH")
    assert typ == "OK", (typ, data)
    url = data[-1].decode().strip('"')
    assert url.startswith(rump + ":INTERNAL:"), url
    return url


def genurlauth_fails(m, rump):
    typ, data = m._simple_command("GENURLAUTH", quoted(rump), "INTERNAL")
    assert typ == "NO" and data[0].startswith(b"[BADURL "), (rump, typ, data)
    assert "GENURLAUTH" not in m.untagged_responses, m.untagged_responses


def urlfetch(m, url):
    """The data URLFETCH returns for `url`, or None for NIL."""
    typ, data = m._simple_command("URLFETCH", quoted(url))
    assert typ == "OK", (typ, data)
    typ, data = m._untagged_response(typ, data, "URLFETCH")
    first = data[0]
    if isinstance(first, tuple):
        head, body = first
        assert head.startswith(quoted(url).encode()), head
        return body
    assert first == (quoted(url) + " NIL").encode(), first
    return None


def resetkey(m, *args):
    typ, data = m._simple_command("RESETKEY", *args)
    assert typ == "OK", (typ, data)


def uidvalidity(m, mailbox):
    typ, data = m.status(mailbox, "(UIDVALIDITY)")
    assert typ == "OK", typ
    return int(data[0].split(b"UIDVALIDITY ")[1].rstrip(b")"))


if mode == "fetch":
    user, pw, url = sys.argv[3:6]
    m = login(user, pw)
    data = urlfetch(m, url)
    print("NIL" if data is None else data.hex())
    m.logout()
    sys.exit(0)

if mode == "body":
    user, pw, mailbox, uid = sys.argv[3:7]
    m = login(user, pw)
    typ, _ = m.select(mailbox, readonly=True)
    assert typ == "OK", typ
    typ, data = m.uid("FETCH", uid, "(BODY.PEEK[])")
    assert typ == "OK", (typ, data)
    print(data[0][1].hex())
    m.logout()
    sys.exit(0)

if mode == "reset":
    user, pw = sys.argv[3:5]
    m = login(user, pw)
    resetkey(m)
    m.logout()
    sys.exit(0)

assert mode == "flows", mode
msg = (
    b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n"
    b"Subject: a URLAUTH test\r\n\r\nSome text for Bob to fetch.\r\n"
)
alice = login("alice", "alice-pw")
typ, caps = alice.capability()
assert b"URLAUTH" in caps[0].split() and b"URLAUTH=BINARY" in caps[0].split(), caps
typ, data = alice.append("INBOX", None, None, msg)
assert typ == "OK", (typ, data)
v = uidvalidity(alice, "INBOX")
base = "imap://alice@%s/INBOX;UIDVALIDITY=%d/;UID=1" % (HOST, v)

# Alice authorizes; Bob, another user, fetches exactly her message.
authuser = genurlauth(alice, base + ";URLAUTH=authuser")
bob = login("bob", "bob-pw")
assert urlfetch(bob, authuser) == msg

# Access identifiers.
for_bob = genurlauth(alice, base + ";URLAUTH=user+bob")
assert urlfetch(bob, for_bob) == msg
assert urlfetch(alice, for_bob) is None
submit = genurlauth(alice, base + ";URLAUTH=submit+bob")
assert urlfetch(bob, submit) is None
root = login("root", "root-pw")
assert urlfetch(root, submit) == msg
part = genurlauth(alice, "imap://alice@%s/INBOX/;UID=1/;SECTION=TEXT;URLAUTH=anonymous" % HOST)
assert urlfetch(bob, part) == b"Some text for Bob to fetch.\r\n"

# Tampering with any part gives NIL, never an error.
token = authuser.rsplit(":", 1)[1]
for bad in (
    authuser.replace(";UID=1;", ";UID=2;"),
    authuser.replace("alice@", "bob@"),
    authuser.replace("URLAUTH=authuser", "URLAUTH=anonymous"),
    authuser.replace(token, token[::-1]),
    authuser.replace(":INTERNAL:", ":XSAMPLE:"),
    authuser.replace("/INBOX;", "/Sent;"),
):
    assert bad != authuser
    assert urlfetch(bob, bad) is None, bad

# Expiry.
expired = genurlauth(alice, base + ";EXPIRE=2020-01-01T00:00:00Z;URLAUTH=authuser")
assert urlfetch(bob, expired) is None
later = genurlauth(alice, base + ";EXPIRE=2999-01-01T00:00:00Z;URLAUTH=authuser")
assert urlfetch(bob, later) == msg

# Only the session's own messages can be authorized.
genurlauth_fails(bob, base + ";URLAUTH=authuser")
genurlauth_fails(alice, "imap://alice@%s/INBOX/;UID=99;URLAUTH=authuser" % HOST)

# RESETKEY revokes every URL of the mailbox; new ones work again.
resetkey(alice, "INBOX", "INTERNAL")
for url in (authuser, for_bob, later, part):
    assert urlfetch(bob, url) is None, url
fresh = genurlauth(alice, base + ";URLAUTH=authuser")
assert fresh != authuser
assert urlfetch(bob, fresh) == msg
resetkey(alice)
assert urlfetch(bob, fresh) is None

for m in (alice, bob, root):
    m.logout()
print("done")
