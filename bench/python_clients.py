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

`fetch` is what a webmail list view or a client's first look at a mailbox asks: it fills the
user's INBOX to --count multipart messages of about 60 KiB (text, HTML and a base64
attachment; once, kept for the next run), then times FETCH 1:N of ENVELOPE, BODYSTRUCTURE, the
list-view header fields, the flags and the whole messages (a client's first download), best of
20, with the server's CPU per FETCH:

    bench/python_clients.py fetch --port 1143 --count 300 --server-pid PID \\
        --user bench --password-file FILE

`select` is a client coming back to a folder: it SELECTs the user's INBOX --count times on one
connection (after 200 unmeasured ones) and prints the server's CPU per SELECT:

    bench/python_clients.py select --port 1143 --count 5000 --server-pid PID \\
        --user bench --password-file FILE

`lmtp-many` delivers each message to --recipients users at once (--rcpt-format, `{i}` the
recipient's number), as an MTA does for a message to several local users, and prints messages
and deliveries per second and the server's CPU per message. smtplib.LMTP reads one reply after
DATA where LMTP sends one per recipient, so this mode speaks LMTP over a plain socket:

    bench/python_clients.py lmtp-many --port 2424 --count 1000 --server-pid PID \\
        --recipients 5 --rcpt-format 'user{i}'

`noop` sends NOOP --count times: one round trip with nothing to do, the share of every
command that is the connection's (two system calls, two wake-ups) rather than the work's.
Keep --count within one second's worth of `[imap] commands_per_second` (5,000 by default),
the burst a connection may send before the limit spaces its commands:

    bench/python_clients.py noop --port 1143 --count 4000 --server-pid PID \\
        --user bench --password-file FILE

`store` is a client marking mail read and unread: it keeps ten messages in the user's INBOX
and sets or clears \\Seen on one of them --count times, printing STOREs per second, their
p50 and p90, and the server's CPU per STORE:

    bench/python_clients.py store --port 1143 --count 3000 --server-pid PID \\
        --user bench --password-file FILE
"""

import argparse
import base64
import imaplib
import os
import random
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


def big_message(i):
    """A multipart/mixed of about 60 KiB: text and HTML alternatives and a PDF attachment."""
    rnd = random.Random(i)
    attachment = base64.encodebytes(rnd.randbytes(40000)).decode().replace("\n", "\r\n")
    html = "<html><body>" + f"<p>Paragraph of report {i}</p>" * 300 + "</body></html>"
    return (
        "From: Alice Example <alice@example.org>\r\n"
        "To: Bob <bob@example.org>, carol@example.org\r\n"
        f"Subject: Report number {i}\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <big{i}.{time.time()}@bench.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        '--b1\r\nContent-Type: multipart/alternative; boundary="b2"\r\n\r\n'
        "--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + "plain text line\r\n" * 200
        + "--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + html
        + "\r\n--b2--\r\n"
        '--b1\r\nContent-Type: application/pdf; name="r.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="r.pdf"\r\n\r\n'
        + attachment
        + "--b1--\r\n"
    ).encode()


FETCH_ITEMS = [
    "(ENVELOPE)",
    "(BODYSTRUCTURE)",
    "(BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])",
    "(UID RFC822.SIZE FLAGS INTERNALDATE)",
    "(BODY.PEEK[])",
]


def fetch(client, count, pid):
    """Fills INBOX to `count` large messages, then times FETCH 1:count per item set."""
    have = int(client.status("INBOX", "(MESSAGES)")[1][0].split()[-1].strip(b")"))
    for i in range(have, count):
        client.append("INBOX", None, None, big_message(i))
    client.select("INBOX", readonly=True)
    for items in FETCH_ITEMS:
        best, c0, reps = float("inf"), server_cpu(pid), 20
        for _ in range(reps):
            t = time.time()
            client.fetch(f"1:{count}", items)
            best = min(best, time.time() - t)
        cpu = (server_cpu(pid) - c0) / reps
        print(
            f"fetch 1:{count} {items}: best {best * 1000:.1f} ms, "
            f"server CPU {cpu * 1000:.1f} ms per FETCH"
        )


def select(client, count, pid):
    """SELECTs INBOX `count` times, after 200 that warm both sides, and reports the CPU."""
    for _ in range(200):
        client.select("INBOX")
    t0, c0 = time.time(), server_cpu(pid)
    for _ in range(count):
        typ, data = client.select("INBOX")
        if typ != "OK":
            sys.exit(f"SELECT failed: {data}")
    dt, dc = time.time() - t0, server_cpu(pid) - c0
    print(
        f"select: {count} SELECTs of {data[0].decode()} messages in {dt:.2f} s "
        f"= {count / dt:.0f}/s, server CPU {dc * 1000 / count:.3f} ms per SELECT"
    )


def store(client, count, pid):
    """Sets or clears \\Seen on one of ten messages `count` times; prints rate and latency."""
    typ, data = client.select("INBOX")
    for i in range(int(data[0]), 10):
        client.append("INBOX", None, None, message(i))
    client.select("INBOX")
    latencies = []
    t0, c0 = time.time(), server_cpu(pid)
    for i in range(count):
        op = "+FLAGS" if (i // 10) % 2 == 0 else "-FLAGS"
        t = time.perf_counter()
        typ, data = client.store(str(i % 10 + 1), op, "\\Seen")
        latencies.append(time.perf_counter() - t)
        if typ != "OK":
            sys.exit(f"STORE failed: {data}")
    dt, dc = time.time() - t0, server_cpu(pid) - c0
    latencies.sort()
    p50, p90 = latencies[count // 2], latencies[count * 9 // 10]
    print(
        f"store: {count} in {dt:.2f} s = {count / dt:.0f}/s, p50 {p50 * 1000:.3f} ms, "
        f"p90 {p90 * 1000:.3f} ms, server CPU {dc * 1000 / count:.3f} ms per STORE"
    )


def lmtp_many(host, port, count, pid, recipients):
    """Delivers `count` messages, each to every address of `recipients`, on one connection."""
    import socket

    sock = socket.create_connection((host, port))
    replies = sock.makefile("rb")

    def reply(expect):
        while True:
            line = replies.readline()
            if line[3:4] != b"-":
                break
        if not line.startswith(expect):
            sys.exit(f"expected {expect!r}, got {line!r}")

    reply(b"220")
    sock.sendall(b"LHLO bench\r\n")
    reply(b"250")
    rcpts = [f"RCPT TO:<{r}@example.org>\r\n".encode() for r in recipients]
    t0, c0 = time.time(), server_cpu(pid)
    for i in range(count):
        sock.sendall(b"MAIL FROM:<a@example.org>\r\n")
        reply(b"250")
        for r in rcpts:
            sock.sendall(r)
            reply(b"250")
        sock.sendall(b"DATA\r\n")
        reply(b"354")
        sock.sendall(message(i) + b".\r\n")
        for _ in rcpts:
            reply(b"250")
    dt, dc = time.time() - t0, server_cpu(pid) - c0
    sock.sendall(b"QUIT\r\n")
    print(
        f"lmtp-many: {count} messages to {len(rcpts)} recipients in {dt:.2f} s = "
        f"{count / dt:.0f} messages/s, {count * len(rcpts) / dt:.0f} deliveries/s, "
        f"server CPU {dc * 1000 / count:.3f} ms per message"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "mode", choices=["lmtp", "lmtp-many", "append", "fetch", "select", "store", "noop"]
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--user", default="bench")
    p.add_argument("--password-file", help="IMAP password (append mode)")
    p.add_argument("--recipients", type=int, default=5, help="recipients (lmtp-many)")
    p.add_argument("--rcpt-format", default="user{i}", help="recipient names (lmtp-many)")
    a = p.parse_args()
    if a.mode == "lmtp-many":
        names = [a.rcpt_format.format(i=i) for i in range(a.recipients)]
        return lmtp_many(a.host, a.port, a.count, a.server_pid, names)
    if a.mode == "lmtp":
        client = smtplib.LMTP(a.host, a.port)
        client.ehlo("bench")
        send = lambda i: client.sendmail(  # noqa: E731
            "a@example.org", [f"{a.user}@example.org"], message(i)
        )
    else:
        if not a.password_file:
            sys.exit(f"{a.mode} needs --password-file")
        with open(a.password_file) as f:
            password = f.read().strip()
        client = imaplib.IMAP4(a.host, a.port)
        client.login(a.user, password)
        if a.mode == "fetch":
            return fetch(client, a.count, a.server_pid)
        if a.mode == "select":
            return select(client, a.count, a.server_pid)
        if a.mode == "store":
            return store(client, a.count, a.server_pid)
        if a.mode == "noop":
            send = lambda i: client.noop()  # noqa: E731
        else:
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
        f"server CPU {dc * 1000 / a.count:.3f} ms per {'command' if a.mode == 'noop' else 'message'}"
    )


if __name__ == "__main__":
    main()
