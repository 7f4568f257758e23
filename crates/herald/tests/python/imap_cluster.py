"""Two Herald nodes on one PostgreSQL database, driven by Python's imaplib and smtplib.LMTP.

Usage: imap_cluster.py IMAP1 LMTP1 IMAP2

1. An IDLE on node 2 wakes when node 1 delivers over LMTP; prints the delay in ms.
2. Sessions on both nodes append to one mailbox at the same time: every UID is given once,
   and each session's UIDs increase.
3. A flag set on node 2 is seen by a session on node 1 at its next NOOP.
"""
import imaplib
import smtplib
import sys
import threading
import time

from imap_checks import read_until

imap1, lmtp1, imap2 = (int(a) for a in sys.argv[1:4])

idler = imaplib.IMAP4("127.0.0.1", imap2)
assert idler.login("alice", "alice-pw")[0] == "OK"
assert idler.select("INBOX")[0] == "OK"
idler.send(b"i1 IDLE\r\n")
assert idler.readline().startswith(b"+ "), "IDLE continuation"

started = time.monotonic()
lmtp = smtplib.LMTP("127.0.0.1", lmtp1)
lmtp.sendmail(
    "bob@example.net",
    ["alice@example.org"],
    b"From: bob@example.net\r\nSubject: via node 1\r\nMessage-ID: <c1@example.net>\r\n\r\nhi\r\n",
)
lmtp.quit()
lines = read_until(idler, [lambda l: l == "* 1 EXISTS"])
woke_ms = (time.monotonic() - started) * 1000
idler.send(b"DONE\r\n")
read_until(idler, [lambda l: l.startswith("i1 OK")])
print("idle woke after %.0f ms" % woke_ms)

# Concurrent appends through both nodes.
EACH = 15
results = {}


def append_many(name, port):
    c = imaplib.IMAP4("127.0.0.1", port)
    assert c.login("alice", "alice-pw")[0] == "OK"
    uids = []
    for i in range(EACH):
        msg = ("Subject: %s %d\r\nMessage-ID: <%s-%d@cluster>\r\n\r\nx\r\n" % (name, i, name, i)).encode()
        typ, data = c.append("INBOX", None, None, msg)
        assert typ == "OK", (typ, data)
        # [APPENDUID uidvalidity uid]
        uids.append(int(data[0].split(b"]")[0].split()[-1]))
    c.logout()
    results[name] = uids


threads = [
    threading.Thread(target=append_many, args=("n1a", imap1)),
    threading.Thread(target=append_many, args=("n1b", imap1)),
    threading.Thread(target=append_many, args=("n2a", imap2)),
    threading.Thread(target=append_many, args=("n2b", imap2)),
]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert len(results) == 4, results
all_uids = []
for name, uids in results.items():
    assert uids == sorted(uids), (name, uids)
    all_uids += uids
assert len(set(all_uids)) == len(all_uids) == 4 * EACH, sorted(all_uids)
assert sorted(all_uids) == list(range(2, 2 + 4 * EACH)), sorted(all_uids)
print("appends: %d unique UIDs" % len(all_uids))

# A change made on node 2 is seen on node 1.
watcher = imaplib.IMAP4("127.0.0.1", imap1)
assert watcher.login("alice", "alice-pw")[0] == "OK"
assert watcher.select("INBOX")[0] == "OK"
assert idler.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
typ, data = watcher.noop()
assert typ == "OK"
seen = [r for r in watcher.untagged_responses.get("FETCH", [])]
assert any(b"\\Flagged" in r for r in seen), seen
print("flags: seen across nodes")
idler.logout()
watcher.logout()
