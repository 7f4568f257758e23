#!/usr/bin/env python3
"""A cluster of Herald nodes on one PostgreSQL database under mixed load, with 1, 2, 3 nodes.

For each node count N it creates a fresh schema, starts N `herald serve` processes on it
(loopback, ephemeral ports), and for --secs seconds runs on every node --clients LMTP clients
(smtplib.LMTP, 2 KiB messages to random users) and --clients IMAP clients (imaplib: NOOP, FETCH
of a message's header, STORE \\Flagged, in a loop). An administrator's SSE stream on the last
node (urllib) receives every event; the event lag is the time from an event's commit
(`timestamp`) to its arrival there, so with several nodes it includes the trip from the node
that made the change.

    bench/cluster.py --herald target/release/herald --nodes 1,2,3 --secs 10

One line per node count:
`cluster N node(s): D deliveries in S s = R/s, IMAP C commands/s, event lag p50 X ms p95 Y ms`.
The schemas and the nodes' directories are removed at the end (psql). Everything runs on this machine: the nodes, the
database and the clients share its cores, which is what the figures measure.
"""

import argparse
import base64
import datetime
import imaplib
import json
import os
import random
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

USERS = 8
PASSWORD = "bench-pw"


def start_node(herald, url, schema, directory, name):
    config = os.path.join(directory, "herald.toml")
    with open(config, "w") as f:
        f.write(
            f'[server]\nhostname = "cluster.example"\nnode = "{name}"\n'
            f'[store]\nbackend = "postgres"\nurl = "{url}"\nschema = "{schema}"\n'
            f'path = "{directory}/data"\n'
            '[imap]\nlisten = ["127.0.0.1:0"]\n[lmtp]\nlisten = ["127.0.0.1:0"]\n'
            '[pop3]\nlisten = ["127.0.0.1:0"]\n[http]\nlisten = ["127.0.0.1:0"]\n'
            "[events]\nlog = false\n"
        )
    proc = subprocess.Popen(
        [herald, "serve", "--config", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HERALD_LOG": "warn"},
        text=True,
    )
    ports = {}
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if line.startswith("listening: "):
            proto, addr = line[len("listening: "):].split()[:2]
            ports[proto] = int(addr.rsplit(":", 1)[1])
        if line.startswith("Herald is serving") or {"imap", "lmtp", "http"} <= ports.keys():
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"node {name} did not start")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, config, ports


def message(n):
    body = ("The quick brown fox jumps over the lazy dog. %d\r\n" % n) * 40
    return (
        "From: load@example.net\r\nSubject: cluster %d\r\nMessage-ID: <%d.%d@cluster>\r\n\r\n%s"
        % (n, n, os.getpid(), body)
    ).encode()


def lmtp_client(port, stop, counts):
    lmtp = smtplib.LMTP("127.0.0.1", port)
    n = 0
    while not stop.is_set():
        user = "bench%d" % random.randrange(USERS)
        lmtp.sendmail("load@example.net", [user + "@cluster.example"], message(n))
        n += 1
    lmtp.quit()
    counts.append(n)


def imap_client(port, user, stop, counts):
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(user, PASSWORD)
    c.select("INBOX")
    n = 0
    while not stop.is_set():
        typ, data = c.noop()
        n += 1
        exists = int(c.untagged_responses.get("EXISTS", [b"0"])[-1] or 0)
        if exists:
            i = random.randrange(1, exists + 1)
            c.fetch(str(i), "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            c.store(str(i), "+FLAGS", "(\\Flagged)")
            n += 2
    c.logout()
    counts.append(n)


def sse_lags(port, stop, lags):
    token = base64.b64encode(("root:" + PASSWORD).encode()).decode()
    req = urllib.request.Request(
        "http://127.0.0.1:%d/events/stream" % port,
        headers={"Accept": "text/event-stream", "Authorization": "Basic " + token},
    )
    resp = urllib.request.urlopen(req, timeout=60)
    for raw in resp:
        if stop.is_set():
            break
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data:"):
            event = json.loads(line[5:])
            stamp = event.get("timestamp")
            if stamp:
                committed = datetime.datetime.fromisoformat(stamp).timestamp()
                lags.append(time.time() - committed)


def run(args, nodes):
    schema = "herald_bench_cluster_%d_%d" % (os.getpid(), nodes)
    root = tempfile.mkdtemp(prefix="herald-cluster-")
    procs = []
    try:
        for i in range(nodes):
            d = os.path.join(root, "node%d" % i)
            os.makedirs(d)
            procs.append(start_node(args.herald, args.url, schema, d, "node%d" % (i + 1)))
        config = procs[0][1]
        for u in ["root"] + ["bench%d" % i for i in range(USERS)]:
            extra = ["--admin"] if u == "root" else []
            subprocess.run(
                [args.herald, "--config", config, "user", "add", u, "--password", PASSWORD]
                + extra,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        stop = threading.Event()
        lags = []
        watcher = threading.Thread(
            target=sse_lags, args=(procs[-1][2]["http"], stop, lags), daemon=True
        )
        watcher.start()
        time.sleep(0.5)
        deliveries, commands, threads = [], [], []
        for _, _, ports in procs:
            for k in range(args.clients):
                threads.append(
                    threading.Thread(target=lmtp_client, args=(ports["lmtp"], stop, deliveries))
                )
                threads.append(
                    threading.Thread(
                        target=imap_client,
                        args=(ports["imap"], "bench%d" % (k % USERS), stop, commands),
                    )
                )
        started = time.monotonic()
        for t in threads:
            t.start()
        while time.monotonic() - started < args.secs:
            time.sleep(1)
            print("  %d node(s): %d s" % (nodes, time.monotonic() - started), file=sys.stderr)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        time.sleep(1)
        lags.sort()
        pct = lambda p: lags[min(len(lags) - 1, int(len(lags) * p))] * 1000 if lags else float("nan")
        print(
            "cluster %d node(s): %d deliveries in %.1f s = %.0f/s, IMAP %.0f commands/s, "
            "event lag p50 %.0f ms p95 %.0f ms (%d events)"
            % (
                nodes,
                sum(deliveries),
                elapsed,
                sum(deliveries) / elapsed,
                sum(commands) / elapsed,
                pct(0.5),
                pct(0.95),
                len(lags),
            ),
            flush=True,
        )
    finally:
        for proc, _, _ in procs:
            proc.terminate()
        for proc, _, _ in procs:
            proc.wait(timeout=30)
        subprocess.run(
            ["psql", args.url, "-X", "-q", "-c", "DROP SCHEMA IF EXISTS %s CASCADE" % schema],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--herald", default="target/release/herald")
    p.add_argument("--url", default="postgres://postgres@127.0.0.1:5432/test")
    p.add_argument("--nodes", default="1,2,3")
    p.add_argument("--secs", type=float, default=10)
    p.add_argument("--clients", type=int, default=2, help="LMTP and IMAP clients per node")
    args = p.parse_args()
    for n in [int(x) for x in args.nodes.split(",")]:
        run(args, n)


if __name__ == "__main__":
    main()
