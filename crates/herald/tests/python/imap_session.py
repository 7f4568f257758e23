"""An IMAP client session with Python's standard imaplib against `herald serve`: every command
the server offers, each reply checked here; the Rust test then checks the event log.

Usage: imap_session.py PORT

Accounts expected: alice/alice-pw, bob/bob-pw, root/root-pw (admin). alice starts empty.
"""
import imaplib
import socket
import sys
import time

port = int(sys.argv[1])
HOST = "127.0.0.1"


def ok(resp, what):
    typ, data = resp
    assert typ == "OK", (what, typ, data)
    return data


def flat(data):
    """A FETCH reply as one byte string (imaplib splits it at literals)."""
    out = b""
    for d in data:
        if isinstance(d, tuple):
            out += b"".join(d)
        elif d is not None:
            out += d
    return out


def no(fn, *args, code=None):
    try:
        typ, data = fn(*args)
    except imaplib.IMAP4.error as e:
        text = str(e)
    else:
        assert typ == "NO", (fn, args, typ, data)
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode()
    if code:
        assert code in text, (code, text)
    return text


MSG1 = (
    b"From: Bob Sender <bob@example.org>\r\n"
    b"To: Alice <alice@example.org>\r\n"
    b"Subject: lunch plans\r\n"
    b"Date: Mon, 23 Nov 2026 08:15:02 +0100\r\n"
    b"Message-ID: <lunch@example.org>\r\n"
    b"\r\n"
    b"Shall we meet at noon?\r\n"
)
MSG2 = (
    b"From: carol@example.net\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: =?utf-8?q?r=C3=A9sum=C3=A9?=\r\n"
    b"Content-Type: multipart/mixed; boundary=XX\r\n"
    b"\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"
    b"--XX\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=cv.pdf\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n"
)

# --- greeting, capabilities, login ------------------------------------------------------------
M = imaplib.IMAP4(HOST, port)
assert M.welcome.startswith(b"* OK [CAPABILITY IMAP4rev1"), M.welcome
caps = M.capabilities
for c in ("IMAP4REV1", "AUTH=PLAIN", "LITERAL+", "IDLE", "UIDPLUS", "MOVE", "CONDSTORE",
          "QUOTA", "NAMESPACE", "ID", "ENABLE", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS"):
    assert c in caps, (c, caps)
no(M.login, "alice", "wrong", code="AUTHENTICATIONFAILED")
ok(M.login("alice", "alice-pw"), "login")
print("login ok")

typ, data = M.xatom("ID", '("name" "imaplib")')
assert typ == "OK"
assert b"Herald" in M.untagged_responses.pop("ID")[0]
ok(M.namespace(), "namespace")
typ, data = M._simple_command("ENABLE", "CONDSTORE")
assert typ == "OK" and M.untagged_responses.pop("ENABLED") == [b"CONDSTORE"], (typ, data)

# --- mailboxes -------------------------------------------------------------------------------
ok(M.create("Archive"), "create")
ok(M.create("Work/Projects"), "create nested")
no(M.create, "Archive", code="ALREADYEXISTS")
ok(M.rename("Work/Projects", "Work/Done"), "rename")
ok(M.subscribe("Archive"), "subscribe")
data = ok(M.lsub(), "lsub")
assert any(b"Archive" in d for d in data), data
ok(M.unsubscribe("Archive"), "unsubscribe")
ok(M.delete("Work/Done"), "delete")
data = ok(M.list(), "list")
names = [d.split(b' "/" ')[-1] for d in data]
assert names == [b"Archive", b"INBOX", b"Work"], names
typ, data = M._simple_command("CREATE", "Trash (USE (\\Trash))")
assert typ == "OK", data
typ, data = M._simple_command("LIST", '(SPECIAL-USE) "" *')
assert typ == "OK"
listed = M.untagged_responses.pop("LIST")
assert listed == [b'(\\HasNoChildren \\Trash) "/" Trash'], listed
typ, data = M._simple_command("LIST", '"" % RETURN (STATUS (MESSAGES UIDNEXT))')
assert typ == "OK"
statuses = M.untagged_responses.pop("STATUS")
assert b"INBOX (MESSAGES 0 UIDNEXT 1)" in statuses, statuses
M.untagged_responses.pop("LIST", None)
print("mailboxes ok")

# --- APPEND ----------------------------------------------------------------------------------
typ, data = M.append("INBOX", r"(\Seen)", None, MSG1)
assert typ == "OK" and b"APPENDUID" in data[0], data
typ, data = M.append("INBOX", None, imaplib.Time2Internaldate(time.time()), MSG2)
assert typ == "OK" and data[0].split()[2] == b"2]", data
no(M.append, "Nowhere", None, None, MSG1, code="TRYCREATE")
data = ok(M.status("INBOX", "(MESSAGES UIDNEXT UNSEEN SIZE HIGHESTMODSEQ)"), "status")
assert b"MESSAGES 2 UIDNEXT 3 UNSEEN 1" in data[0], data
print("append ok")

# --- SELECT, FETCH ---------------------------------------------------------------------------
typ, data = M.select("INBOX")
assert typ == "OK" and data == [b"2"], data
assert M.untagged_responses.get("UIDVALIDITY"), M.untagged_responses
typ, data = M.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
assert typ == "OK", data
f = flat(data)
# The first session to select the mailbox sees both messages as \Recent (IMAP4rev1).
assert b"1 (UID 1 FLAGS (\\Seen \\Recent) RFC822.SIZE %d INTERNALDATE" % len(MSG1) in f, f
assert b'"lunch plans" (("Bob Sender" NIL "bob" "example.org"))' in f, f
assert b'"=?utf-8?q?r=C3=A9sum=C3=A9?="' in f, f
f = flat(M.fetch("2", "(BODYSTRUCTURE)")[1])
assert b'("TEXT" "PLAIN" ("charset" "utf-8") NIL NIL "7BIT" 12 1 NIL NIL NIL NIL)' in f, f
assert b'("APPLICATION" "PDF" NIL NIL NIL "BASE64" 12 NIL ("attachment" ("filename" "cv.pdf")) NIL NIL)' in f, f
assert b'"MIXED" ("boundary" "XX") NIL NIL NIL)' in f, f
f = flat(M.fetch("2", "(BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS (FROM)] BODY.PEEK[2.MIME])")[1])
assert b'BODY[1] "see attached"' in f, f
assert b"BODY[HEADER.FIELDS (FROM)] {27}From: carol@example.net\r\n\r\n" in f, f
assert b"BODY[2.MIME] {" in f and b"Content-Disposition: attachment; filename=cv.pdf\r\n\r\n" in f, f
f = flat(M.fetch("2", "(FLAGS)")[1])
assert b"FLAGS (\\Recent)" in f, f
f = flat(M.fetch("2", "(BODY[]<0.10>)")[1])
assert b'BODY[]<0> "From: caro"' in f and b"FLAGS (\\Seen \\Recent)" in f, f
f = flat(M.uid("FETCH", "1", "(RFC822.HEADER MODSEQ)")[1])
assert MSG1[: MSG1.index(b"\r\n\r\n") + 4] in f and b"MODSEQ (" in f, f
f = flat(M.fetch("1", "RFC822")[1])
assert MSG1 in f, f
print("fetch ok")

# --- STORE, SEARCH ---------------------------------------------------------------------------
typ, data = M.store("1", "+FLAGS", r"(\Flagged $Work)")
assert typ == "OK" and b"\\Flagged" in flat(data) and b"$Work" in flat(data), data
typ, data = M.store("1", "-FLAGS", r"(\Flagged)")
assert typ == "OK" and b"\\Flagged" not in flat(data), data
typ, data = M._simple_command("STORE", "2", "(UNCHANGEDSINCE 1)", "+FLAGS", r"(\Answered)")
assert typ == "OK" and b"MODIFIED 2" in data[0], (typ, data)
ok(M.store("2", "-FLAGS.SILENT", r"(\Seen)"), "silent store")
assert M.search(None, "UNSEEN") == ("OK", [b"2"])
assert M.search(None, "KEYWORD", "$Work") == ("OK", [b"1"])
assert M.search(None, "FROM", "bob", "SUBJECT", "LUNCH") == ("OK", [b"1"])
assert M.search(None, "BODY", "attached") == ("OK", [b"2"])
assert M.search(None, "OR", "SEEN", "LARGER", "100000") == ("OK", [b"1"])
assert M.search(None, "HEADER", "Message-ID", "lunch@") == ("OK", [b"1"])
M.literal = "résumé".encode()
assert M.search("UTF-8", "SUBJECT") == ("OK", [b"2"])
assert M.uid("SEARCH", "UID", "1:*", "NOT", "DELETED") == ("OK", [b"1 2"])
assert M.search(None, "SENTON", "23-Nov-2026") == ("OK", [b"1"])
assert M.search(None, "1:2", "SINCE", "1-Jan-2020") == ("OK", [b"1 2"])
print("store/search ok")

# --- COPY, MOVE, EXPUNGE ---------------------------------------------------------------------
typ, data = M.copy("1:2", "Archive")
assert typ == "OK" and b"COPYUID" in data[0] and b"1:2 1:2" in data[0], data
M.untagged_responses.pop("EXPUNGE", None)
typ, data = M._simple_command("UID", "MOVE", "2", "Archive")
assert typ == "OK", data
assert M.untagged_responses.pop("EXPUNGE", None) == [b"2"], M.untagged_responses
typ, data = M.store("1", "+FLAGS", r"(\Deleted)")
assert typ == "OK"
typ, data = M.expunge()
assert typ == "OK" and data == [b"1"], data
ok(M.select("Archive"), "select archive")
ok(M.store("1:3", "+FLAGS.SILENT", r"(\Deleted)"), "delete in archive")
M.untagged_responses.pop("EXPUNGE", None)
typ, data = M.uid("EXPUNGE", "1")
assert typ == "OK" and M.untagged_responses.pop("EXPUNGE", None) == [b"1"], data
ok(M.close(), "close expunges the rest")
data = ok(M.status("Archive", "(MESSAGES)"), "status archive")
assert b"MESSAGES 0" in data[0], data
ok(M.select("Archive", readonly=True), "examine")
print("copy/move/expunge ok")

# --- QUOTA -----------------------------------------------------------------------------------
typ, data = M.getquotaroot("INBOX")
assert typ == "OK", data
no(M.setquota, '""', "(STORAGE 1)", code="NOPERM")

# root acting as alice (SASL PLAIN authorization identity)
A = imaplib.IMAP4(HOST, port)
A.authenticate("PLAIN", lambda _: b"alice\0root\0root-pw")
ok(A.setquota('""', "(STORAGE 1 MESSAGE 100)"), "setquota")
data = ok(A.getquota('""'), "getquota")
assert b"STORAGE 0 1 MESSAGE 0 100" in data[0], data
A.logout()
no(M.append, "INBOX", None, None, b"Subject: big\r\n\r\n" + b"x" * 3000, code="OVERQUOTA")
print("quota ok")

# --- isolation -------------------------------------------------------------------------------
B = imaplib.IMAP4(HOST, port)
ok(B.login("bob", "bob-pw"), "bob login")
no(B.select, "Archive", code="NONEXISTENT")
data = ok(B.list(), "bob list")
assert data == [b'(\\HasNoChildren) "/" INBOX'], data
no(B.getquota, "alice", code="NONEXISTENT")
B.logout()
print("isolation ok")

# --- IDLE: another session's APPEND wakes it -------------------------------------------------
ok(M.select("INBOX"), "select inbox")
tag = M._new_tag()
M.send(tag + b" IDLE\r\n")
line = M.readline()
assert line.startswith(b"+ "), line
W = imaplib.IMAP4(HOST, port)
ok(W.login("alice", "alice-pw"), "writer login")
ok(W.append("INBOX", None, None, b"Subject: ping\r\n\r\nhi\r\n"), "append while idling")
W.logout()
sock = M.socket()
sock.settimeout(10)
line = M.readline()
assert line == b"* 1 EXISTS\r\n", line
line = M.readline()
assert line == b"* 1 RECENT\r\n", line
M.send(b"DONE\r\n")
line = M.readline()
assert line.startswith(tag + b" OK"), line
sock.settimeout(None)
print("idle ok")

# --- bad input -------------------------------------------------------------------------------
try:
    M._simple_command("FETCH", "1", "(BOGUS)")
    raise AssertionError("FETCH (BOGUS) was accepted")
except imaplib.IMAP4.error as e:
    assert "BAD" in str(e) or "command error" in str(e), e
ok(M.noop(), "still alive")

# --- LOGOUT, and a dropped connection --------------------------------------------------------
typ, data = M.logout()
assert typ == "BYE", (typ, data)
D = imaplib.IMAP4(HOST, port)
ok(D.login("alice", "alice-pw"), "login to drop")
D.shutdown()
print("done")
