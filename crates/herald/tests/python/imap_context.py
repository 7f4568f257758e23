"""RFC 8474 THREADID, RFC 7162 VANISHED (EARLIER) from tombstones, and RFC 5267 CONTEXT=SEARCH /
CONTEXT=SORT (UPDATE, PARTIAL, CANCELUPDATE), with Python's standard imaplib against
`herald serve` on the real store, across two connections.

Usage: imap_context.py PORT

Account expected: erin/erin-pw, empty. Prints "done" at the end.
"""
import imaplib
import re
import sys

port = int(sys.argv[1])
HOST = "127.0.0.1"
imaplib.Commands.setdefault("CANCELUPDATE", ("SELECTED",))


def ok(resp, what):
    typ, data = resp
    assert typ == "OK", (what, typ, data)
    return data


def login():
    c = imaplib.IMAP4(HOST, port)
    ok(c.login("erin", "erin-pw"), "login")
    return c


def mail(msgid, parents=(), subject="plan"):
    m = "Message-ID: <%s>\r\nSubject: %s\r\n" % (msgid, subject)
    if parents:
        m += "In-Reply-To: <%s>\r\n" % parents[-1]
        m += "References: %s\r\n" % " ".join("<%s>" % p for p in parents)
    return (m + "\r\nbody\r\n").encode()


_arrivals = iter(range(1_700_000_000, 1_800_000_000, 60))


def when():
    """A distinct, increasing INTERNALDATE per APPEND: SORT ARRIVAL orders equal dates by
    sequence number even under REVERSE (RFC 5256), so appends within one second would make
    the expected order depend on the clock."""
    return imaplib.Time2Internaldate(next(_arrivals))


def thread_ids(data):
    return [re.search(rb"THREADID \(([A-Za-z0-9_-]+)\)", d).group(1) for d in data]


a = login()
b = login()

# --- THREADID: replies share their root's thread, an unrelated message has its own, and a
# copy keeps it.
ok(a.append("INBOX", None, when(), mail("root@x")), "append root")
ok(a.append("INBOX", None, when(), mail("reply@x", ["root@x"], "Re: plan")), "append reply")
ok(a.append("INBOX", None, when(), mail("other@x")), "append unrelated")
ok(a.append("INBOX", None, when(), mail("deep@x", ["root@x", "reply@x"], "Re: Re: plan")), "append")
ok(a.select("INBOX"), "select")
ids = thread_ids(ok(a.fetch("1:4", "(THREADID)"), "fetch threadid"))
assert ids[0] == ids[1] == ids[3] and ids[2] != ids[0], ids
found = ok(a.search(None, "THREADID", ids[0].decode()), "search threadid")
assert found == [b"1 2 4"], found
ok(a.create("Kept"), "create")
ok(a.copy("2", "Kept"), "copy")
ok(b.select("Kept"), "select kept")
kept = thread_ids(ok(b.fetch("1", "(THREADID)"), "fetch copy"))
assert kept == [ids[0]], kept
b.close()

# --- CONTEXT=SEARCH: an UPDATE context hears of another connection's changes on NOOP.
ok(a.store("1:4", "+FLAGS", r"(\Seen)"), "mark seen")
ok(a.store("3", "-FLAGS", r"(\Seen)"), "one unseen")
typ, data = a._simple_command("UID", "SEARCH", "RETURN", "(UPDATE ALL)", "UNSEEN")
assert typ == "OK", (typ, data)
first = a.untagged_responses.pop("ESEARCH")
assert len(first) == 1 and first[0].endswith(b" UID ALL 3"), first
search_tag = re.match(rb'\(TAG "([^"]+)"\)', first[0]).group(1)
ok(b.select("INBOX"), "select")
ok(b.append("INBOX", None, when(), mail("new@x")), "append unseen")
ok(b.store("3", "+FLAGS", r"(\Seen)"), "seen elsewhere")
ok(a.noop(), "noop")
updates = a.untagged_responses.pop("ESEARCH")
assert updates == [b'(TAG "%s") UID REMOVEFROM (0 3) ADDTO (0 5)' % search_tag], updates

# --- CONTEXT=SORT: positions in the sort order; PARTIAL pages it.
typ, data = a._simple_command(
    "UID", "SORT", "RETURN", "(UPDATE PARTIAL 1:2)", "(REVERSE ARRIVAL)", "UTF-8", "ALL"
)
assert typ == "OK", (typ, data)
page = a.untagged_responses.pop("ESEARCH")
assert len(page) == 1 and page[0].endswith(b" UID PARTIAL (1:2 5,4)"), page
sort_tag = re.match(rb'\(TAG "([^"]+)"\)', page[0]).group(1)
ok(b.append("INBOX", None, when(), mail("newest@x")), "append newest")
ok(a.noop(), "noop")
updates = a.untagged_responses.pop("ESEARCH")
assert updates == [
    b'(TAG "%s") UID ADDTO (0 6)' % search_tag,
    b'(TAG "%s") UID ADDTO (1 6)' % sort_tag,
], updates

# --- CANCELUPDATE: no more updates for either.
typ, data = a._simple_command(
    "CANCELUPDATE", '"%s"' % search_tag.decode(), '"%s"' % sort_tag.decode()
)
assert typ == "OK", (typ, data)
ok(b.append("INBOX", None, when(), mail("later@x")), "append later")
ok(a.noop(), "noop")
assert "ESEARCH" not in a.untagged_responses, a.untagged_responses

# --- QRESYNC: VANISHED (EARLIER) names only what was expunged after the client's MODSEQ.
status = ok(a.status("INBOX", "(UIDVALIDITY)"), "status")
uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", status[0]).group(1))
ok(b.uid("STORE", "2", "+FLAGS", r"(\Deleted)"), "delete 2")
ok(b.expunge(), "expunge 2")
status = ok(b.status("INBOX", "(HIGHESTMODSEQ)"), "status")
synced = int(re.search(rb"HIGHESTMODSEQ (\d+)", status[0]).group(1))
ok(b.uid("STORE", "4", "+FLAGS", r"(\Deleted)"), "delete 4")
ok(b.expunge(), "expunge 4")
a.logout()
c = login()
typ, data = c._simple_command("ENABLE", "QRESYNC")
assert typ == "OK", (typ, data)
typ, data = c._simple_command(
    "SELECT", "INBOX", "(QRESYNC (%d %d 1:7))" % (uidvalidity, synced)
)
assert typ == "OK", (typ, data)
vanished = c.untagged_responses.pop("VANISHED")
assert vanished == [b"(EARLIER) 4"], vanished
c.state = "SELECTED"
typ, data = c._simple_command(
    "UID", "FETCH", "1:7", "(FLAGS)", "(CHANGEDSINCE %d VANISHED)" % synced
)
assert typ == "OK", (typ, data)
assert c.untagged_responses.pop("VANISHED") == [b"(EARLIER) 4"]
c.logout()
b.logout()
print("done")
