"""A POP3 session with Python's poplib: checks each reply; deletes the messages whose numbers
are given, then QUITs (or drops the connection with --drop).

Usage: pop3_session.py PORT USER PASSWORD EXPECTED_COUNT [DELE_NUMBER...] [--drop]
"""
import poplib
import sys

args = sys.argv[1:]
drop = "--drop" in args
args = [a for a in args if a != "--drop"]
port, user, password, expected = int(args[0]), args[1], args[2], int(args[3])
dele = [int(n) for n in args[4:]]

pop = poplib.POP3("127.0.0.1", port)
assert pop.getwelcome().startswith(b"+OK"), pop.getwelcome()
caps = pop.capa()
for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "SASL"):
    assert cap in caps, (cap, caps)
pop.user(user)
pop.pass_(password)
count, size = pop.stat()
assert count == expected, (count, expected)
resp, listing, _ = pop.list()
assert len(listing) == count
resp, uidls, _ = pop.uidl()
assert len(uidls) == count and len({u.split()[1] for u in uidls}) == count
if count:
    resp, lines, octets = pop.retr(1)
    assert resp.startswith(b"+OK")
    body = b"\r\n".join(lines)
    assert b"Subject: Herald end-to-end" in body, body
    # Dot-stuffing undone by poplib: the line is back as sent.
    assert b".a line that starts with a dot" in lines, lines
    resp, top, _ = pop.top(1, 0)
    assert b"" in top and not any(l.startswith(b"Hello") for l in top), top
for n in dele:
    assert pop.dele(n).startswith(b"+OK")
if drop:
    pop.sock.close()
    print("dropped")
else:
    print(pop.quit().decode())
