#!/usr/bin/env python3
"""Delivery and APPEND as real mail clients do them, with the server's CPU per message.

Sends N messages of about 2 KiB over one connection with Python's standard clients
(smtplib.LMTP or imaplib) to a running server (Herald, or a peer such as the private Dovecot
of bench/dovecot.sh), and reads the server's CPU time from /proc before and after, so the
figure covers the server only:

    bench/python_clients.py lmtp   --port 2424 --count 2000 --server-pid PID
    bench/python_clients.py append --port 1143 --count 2000 --server-pid PID \\
        --user bench --password-file FILE

It prints one line: `MODE: N in S s = R/s, server CPU X ms per message`.
"""

import argparse
import imaplib
import os
import smtplib
import sys
import time


def _stat(pid):
    """(ppid, own CPU ticks, reaped children's CPU ticks) of `pid`, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def server_cpu(pid):
    """User plus system CPU seconds of the process `pid` (all its threads) and of its live
    descendants, plus what it collected from children that exited: a server that runs a
    process per connection (Dovecot, Cyrus) is measured whole, as Herald is."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                stats[int(entry)] = st
    children = {}
    for p, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(p)
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            _, own, reaped = stats[p]
            total += own + reaped
            todo.extend(children.get(p, []))
    return total / os.sysconf("SC_CLK_TCK")


BODY = ("X" * 70 + "\r\n") * 28


def message(i):
    return (
        "From: a@example.org\r\nTo: bench@example.org\r\n"
        f"Subject: m {i}\r\nMessage-ID: <{i}.{time.time()}@bench.example>\r\n\r\n" + BODY
    ).encode()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["lmtp", "append"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--user", default="bench")
    p.add_argument("--password-file", help="IMAP password (append mode)")
    a = p.parse_args()
    if a.mode == "lmtp":
        client = smtplib.LMTP(a.host, a.port)
        client.ehlo("bench")
        send = lambda i: client.sendmail(  # noqa: E731
            "a@example.org", [f"{a.user}@example.org"], message(i)
        )
    else:
        if not a.password_file:
            sys.exit("append needs --password-file")
        with open(a.password_file) as f:
            password = f.read().strip()
        client = imaplib.IMAP4(a.host, a.port)
        client.login(a.user, password)
        send = lambda i: client.append("INBOX", None, None, message(i))  # noqa: E731
    t0, c0 = time.time(), server_cpu(a.server_pid)
    for i in range(a.count):
        send(i)
        if sys.stderr.isatty() and i % 200 == 199:
            print(f"\r{i + 1}/{a.count}", end="", file=sys.stderr, flush=True)
    dt, dc = time.time() - t0, server_cpu(a.server_pid) - c0
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(
        f"{a.mode}: {a.count} in {dt:.2f} s = {a.count / dt:.0f}/s, "
        f"server CPU {dc * 1000 / a.count:.3f} ms per message"
    )


if __name__ == "__main__":
    main()
