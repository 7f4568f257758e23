"""A login flood, for measuring what it costs everyone else (not run by the tests).

Usage: login_flood.py IMAP_PORT_127.0.0.1 IMAP_PORT_::1

Sends 600 parallel LOGINs with wrong passwords for `alice` from 127.0.0.1 while `bob`
(password `bob-pw`) logs in over ::1, and prints how long bob's LOGIN took and how the
attacker's attempts were answered. Start `herald serve` with IMAP on both addresses first.
"""
import imaplib, socket, sys, threading, time
port4, port6 = int(sys.argv[1]), int(sys.argv[2])
answers = {"NO [AUTHENTICATIONFAILED]": 0, "NO [UNAVAILABLE]": 0, "other": 0}
lock = threading.Lock()
def attack(i):
    try:
        s = socket.create_connection(("127.0.0.1", port4), timeout=60)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"a LOGIN alice wrong%d\r\n" % i)
        line = f.readline().decode()
        key = next((k for k in answers if k in line), "other")
    except Exception:
        key = "other"
    with lock:
        answers[key] += 1
threads = [threading.Thread(target=attack, args=(i,)) for i in range(600)]
for t in threads: t.start()
time.sleep(0.2)
t0 = time.monotonic()
m = imaplib.IMAP4("::1", port6)
typ, _ = m.login("bob", "bob-pw")
took = time.monotonic() - t0
m.logout()
for t in threads: t.join()
print(f"bob's LOGIN over ::1 during the attack: {typ} in {took*1000:.0f} ms; attacker: {answers}")
