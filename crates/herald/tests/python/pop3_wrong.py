"""Tries a wrong password over POP3 (USER/PASS) with Python's poplib and checks it is refused.

Usage: pop3_wrong.py PORT USER PASSWORD
"""
import poplib
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
pop = poplib.POP3("127.0.0.1", port)
pop.user(user)
try:
    pop.pass_(password)
except poplib.error_proto:
    print("refused")
else:
    raise AssertionError("a wrong password logged in")
pop.quit()
