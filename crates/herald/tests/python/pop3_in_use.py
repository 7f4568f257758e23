"""Two POP3 sessions for one user: the second is refused with [IN-USE] while the first holds
the maildrop (RFC 2449), and succeeds once the first has quit.

Usage: pop3_in_use.py PORT USER PASSWORD [SECOND_PORT]

With SECOND_PORT the second session goes to another node of a cluster.
"""
import poplib
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
second_port = int(sys.argv[4]) if len(sys.argv) > 4 else port
first = poplib.POP3("127.0.0.1", port)
first.user(user)
first.pass_(password)
second = poplib.POP3("127.0.0.1", second_port)
second.user(user)
try:
    second.pass_(password)
    raise SystemExit("the second session was let in")
except poplib.error_proto as e:
    assert b"[IN-USE]" in e.args[0], e
first.quit()
third = poplib.POP3("127.0.0.1", second_port)
third.user(user)
third.pass_(password)
third.quit()
print("ok")
