"""IMAP NOTIFY (RFC 5465) with Python's imaplib: a session that set NOTIFY and then sends
nothing is told of deliveries, expunges and mailbox changes made elsewhere within a second.

Usage: imap_notify.py IMAP_PORT LMTP_PORT

imaplib has no NOTIFY method, so the script sends it with `_simple_command` and reads the
unsolicited responses that follow straight from the connection, with a deadline.
"""
import imaplib
import select
import smtplib
import sys
import time

from imap_checks import read_until

imap_port, lmtp_port = int(sys.argv[1]), int(sys.argv[2])
imaplib.Commands["NOTIFY"] = ("AUTH", "SELECTED")

WITHIN = 1.0


def deliver(rcpt, subject):
    msg = "From: bob@example.net\r\nTo: %s\r\nSubject: %s\r\n\r\nHello.\r\n" % (rcpt, subject)
    lmtp = smtplib.LMTP("127.0.0.1", lmtp_port)
    lmtp.ehlo("client.example.net")
    lmtp.sendmail("bob@example.net", [rcpt], msg)
    lmtp.quit()


def quiet(conn, secs):
    """Nothing arrives on the connection for `secs` seconds."""
    readable, _, _ = select.select([conn.sock], [], [], secs)
    assert not readable, conn.sock.recv(4096)


def command(conn, text):
    name, _, args = text.partition(" ")
    try:
        return conn._simple_command(name, args)
    except imaplib.IMAP4.error as e:
        return ("BAD", [str(e).encode()])


a = imaplib.IMAP4("127.0.0.1", imap_port)
a.login("alice", "alice-pw")
assert "NOTIFY" in a.capabilities, a.capabilities
assert a.create("Work")[0] == "OK"
# Deliveries reach a folder by `alice+Work@` only when it is subscribed.
assert a.subscribe("Work")[0] == "OK"
assert a.select("INBOX")[0] == "OK"

# RFC 5465's rules: composition errors are BAD, unsupported events NO [BADEVENT (...)].
for bad in [
    "NOTIFY SET (personal (MessageNew))",
    "NOTIFY SET (personal (FlagChange))",
    "NOTIFY SET (selected (MessageNew MessageExpunge MailboxName))",
    "NOTIFY SET (selected NONE) (selected-delayed NONE)",
    "NOTIFY SET (everything (MailboxName))",
]:
    typ, data = command(a, bad)
    assert typ == "BAD", (bad, typ, data)
typ, data = command(a, "NOTIFY SET (personal (AnnotationChange MessageNew MessageExpunge))")
assert typ == "NO", (typ, data)
assert data[0].startswith(b"[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName"), data

# NOTIFY SET STATUS: the current STATUS of every mailbox the message events cover, before OK.
typ, data = command(a, "NOTIFY SET STATUS (mailboxes Work (MessageNew MessageExpunge))")
assert typ == "OK", (typ, data)
status = a.untagged_responses.pop("STATUS", [])
assert any(s.startswith(b"Work (MESSAGES 0 UIDNEXT 1 UIDVALIDITY ") for s in status), status

# The command; from here on the session sends nothing until NOTIFY NONE.
typ, data = command(
    a,
    "NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge)) "
    "(personal (MessageNew MessageExpunge MailboxName SubscriptionChange))",
)
assert typ == "OK", (typ, data)

# A delivery to the selected INBOX: EXISTS, then FETCH with the requested UID and FLAGS.
deliver("alice@example.org", "first")
lines = read_until(
    a,
    [lambda l: l == "* 1 EXISTS", lambda l: l.startswith("* 1 FETCH (UID 1 FLAGS (")],
)
print("inbox:", lines)

# A delivery to another mailbox: its STATUS.
deliver("alice+Work@example.org", "to work")
lines = read_until(
    a, [lambda l: l.startswith("* STATUS Work (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ")]
)
assert lines[-1].endswith(" UNSEEN 1)"), lines
print("work:", lines)

# A second session of the same user changes mailboxes and subscriptions: LIST responses.
b = imaplib.IMAP4("127.0.0.1", imap_port)
b.login("alice", "alice-pw")
steps = [
    (lambda: b.create("Projects"), '* LIST (\\HasNoChildren) "/" Projects'),
    (
        lambda: b.rename("Projects", "Plans"),
        '* LIST (\\HasNoChildren) "/" Plans ("OLDNAME" (Projects))',
    ),
    (lambda: b.subscribe("Plans"), '* LIST (\\HasNoChildren \\Subscribed) "/" Plans'),
    (lambda: b.delete("Plans"), '* LIST (\\NonExistent \\Subscribed) "/" Plans'),
    (lambda: b.unsubscribe("Plans"), '* LIST (\\NonExistent) "/" Plans'),
]
for act, expected in steps:
    assert act()[0] == "OK", expected
    lines = read_until(a, [lambda l, e=expected: l == e])
    assert lines == [expected], lines
print("lists: ok")

# An expunge in the selected mailbox by the other session: EXPUNGE at once.
assert b.select("INBOX")[0] == "OK"
assert b.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
assert b.expunge()[0] == "OK"
lines = read_until(a, [lambda l: l == "* 1 EXPUNGE"])
assert lines == ["* 1 EXPUNGE"], lines
print("expunge: ok")

# Under NOTIFY, IDLE reports what NOTIFY asks for (RFC 5465 §4), and with QRESYNC an expunge
# is a VANISHED.
c = imaplib.IMAP4("127.0.0.1", imap_port)
c.login("alice", "alice-pw")
assert command(c, "ENABLE QRESYNC")[0] == "OK"
assert c.select("INBOX")[0] == "OK"
typ, data = command(c, "NOTIFY SET (selected (MessageNew (UID) MessageExpunge))")
assert typ == "OK", (typ, data)
c.send(b"i1 IDLE\r\n")
assert c.readline().startswith(b"+ "), "IDLE continuation"
deliver("alice@example.org", "while idling")
# QRESYNC implies CONDSTORE, so the FETCH carries MODSEQ too.
lines = read_until(
    c, [lambda l: l == "* 1 EXISTS", lambda l: l.startswith("* 1 FETCH (UID 2 MODSEQ (")]
)
assert b.noop()[0] == "OK"  # b learns of the new message first
assert b.uid("STORE", "2", "+FLAGS", "(\\Deleted)")[0] == "OK"
assert b.expunge()[0] == "OK"
lines += read_until(c, [lambda l: l == "* VANISHED 2"])
assert not any("FLAGS" in l for l in lines), lines
c.send(b"DONE\r\n")
lines = read_until(c, [lambda l: l.startswith("i1 OK")])
assert lines == ["i1 OK IDLE terminated"], lines
c.logout()
print("idle: ok")

# The session's own changes are not notified: its CREATE is answered by the tagged OK alone.
typ, data = command(a, "CREATE Mine")
assert typ == "OK", (typ, data)
assert "LIST" not in a.untagged_responses, a.untagged_responses
quiet(a, 0.5)

# NOTIFY NONE stops them; the next command still reports the mailbox's news.
typ, data = command(a, "NOTIFY NONE")
assert typ == "OK", (typ, data)
deliver("alice@example.org", "after none")
assert b.create("Silent")[0] == "OK"
quiet(a, 1.5)
a.untagged_responses.clear()
a.noop()
assert a.untagged_responses.get("EXISTS") == [b"1"], a.untagged_responses
b.logout()
a.logout()
print("done")
