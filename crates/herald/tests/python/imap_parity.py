"""The IMAP behaviours clients compare with Dovecot, with Python's standard imaplib against
`herald serve` on the real store: keywords in FLAGS, \\Recent, MOVE and COPY into the selected
mailbox, LSUB with %, LIST-EXTENDED option errors, names that are not modified UTF-7, ESEARCH
MIN/MAX with MODSEQ, and the ENVELOPE name of `user@host (Name)`.

Usage: imap_parity.py PORT

Account expected: carol/carol-pw, empty. Prints "done" at the end.
"""
import imaplib
import sys

port = int(sys.argv[1])
HOST = "127.0.0.1"
MSG = b"From: bob@example.org (Bob Smith)\r\nSubject: parity\r\n\r\nhello\r\n"
SYSTEM = rb"\Answered \Flagged \Deleted \Seen \Draft"


def ok(resp, what):
    typ, data = resp
    assert typ == "OK", (what, typ, data)
    return data


def login():
    c = imaplib.IMAP4(HOST, port)
    ok(c.login("carol", "carol-pw"), "login")
    return c


a = login()
for _ in range(2):
    ok(a.append("INBOX", None, None, MSG), "append")
ok(a.append("INBOX", r"(\Seen $Work)", None, MSG), "append with a keyword")

# SELECT: the keyword in FLAGS and PERMANENTFLAGS; three messages nobody was told of.
ok(a.select("INBOX"), "select")
flags = a.untagged_responses.pop("FLAGS")[0]
assert flags == b"(" + SYSTEM + b" $Work)", flags
assert a.untagged_responses.pop("RECENT") == [b"3"]
perm = [r for r in a.untagged_responses.pop("OK") if r.startswith(b"[PERMANENTFLAGS")]
assert perm == [b"[PERMANENTFLAGS (" + SYSTEM + rb" $Work \*)] flags permitted"], perm

# A second session: nothing is recent to it, and it learns a new keyword before the FETCH.
b = login()
ok(b.select("INBOX"), "select")
assert b.untagged_responses.pop("RECENT") == [b"0"]
b.untagged_responses.pop("FLAGS")
ok(a.store("1", "+FLAGS", "$Later"), "store a new keyword")
data = ok(b.noop(), "noop")
assert b.untagged_responses.pop("FLAGS")[0] == b"(" + SYSTEM + b" $Later $Work)"
fetched = b.untagged_responses.pop("FETCH")
assert fetched == [b"1 (UID 1 FLAGS ($Later))"], fetched
data = ok(a.fetch("1:3", "(FLAGS)"), "fetch flags")
assert data == [
    rb"1 (FLAGS ($Later \Recent))",
    rb"2 (FLAGS (\Recent))",
    rb"3 (FLAGS (\Seen $Work \Recent))",
], data
assert ok(a.search(None, "NEW"), "search new") == [b"1 2"]
assert ok(b.search(None, "OLD"), "search old") == [b"1 2 3"]
b.logout()

# MOVE and COPY into the mailbox itself: new UIDs, the old one expunged.
typ, data = a.uid("MOVE", "2", "INBOX")
assert typ == "OK", (typ, data)
assert a.untagged_responses.pop("EXPUNGE") == [b"2"]
typ, data = a.uid("COPY", "1", "INBOX")
assert typ == "OK", (typ, data)
copyuid = a.untagged_responses.pop("COPYUID")
assert copyuid[-1].split()[1:] == [b"1", b"5"], copyuid
assert ok(a.uid("SEARCH", None, "ALL"), "uid search") == [b"1 3 4 5"]

# ESEARCH MIN/MAX report that message's MODSEQ; the first MODSEQ search enables CONDSTORE.
typ, data = a._simple_command("UID", "SEARCH", "RETURN", "(MIN)", "MODSEQ", "1")
assert typ == "OK", (typ, data)
esearch = a.untagged_responses.pop("ESEARCH")[0]
assert esearch.startswith(b'(TAG "') and b" UID MIN 1 MODSEQ " in esearch, esearch
highest = [r for r in a.untagged_responses.pop("OK", []) if r.startswith(b"[HIGHESTMODSEQ")]
assert len(highest) == 1, highest
data = ok(a.uid("FETCH", "1", "(MODSEQ)"), "fetch modseq")
min_modseq = esearch.split(b" MODSEQ ")[1]
assert data == [b"1 (UID 1 MODSEQ (" + min_modseq + b"))"], (data, esearch)

# ENVELOPE: the comment is the name.
data = ok(a.fetch("1", "(ENVELOPE)"), "fetch envelope")
assert b'(("Bob Smith" NIL "bob" "example.org"))' in data[0], data

# LSUB %: the unsubscribed parent of a subscribed child, as \Noselect.
ok(a.create("Projects/Herald"), "create")
ok(a.subscribe("Projects/Herald"), "subscribe")
data = ok(a.lsub('""', "%"), "lsub")
assert rb'(\Noselect) "/" Projects' in data, data

# LIST-EXTENDED: an unknown option is BAD; RECURSIVEMATCH lists the parent with CHILDINFO.
try:
    a._simple_command("LIST", "(SUBSCRIBED FRESH)", '""', '"*"')
except imaplib.IMAP4.error as e:
    assert "unknown LIST selection option" in str(e), e
else:
    raise AssertionError("LIST with an unknown option was not BAD")
typ, data = a._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '"%"')
assert typ == "OK", (typ, data)
listed = a.untagged_responses.pop("LIST")
assert rb'(\HasChildren) "/" Projects ("CHILDINFO" ("SUBSCRIBED"))' in listed, listed

# A well-formed name that is not modified UTF-7: NO, and the session goes on.
typ, data = a.create('"&Jjo!"')
assert typ == "NO" and data[0].startswith(b"[CANNOT]"), (typ, data)
ok(a.noop(), "noop")
a.logout()
print("done")
