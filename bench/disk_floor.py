#!/usr/bin/env python3
"""What one durable commit costs the kernel and the disk alone, with no database in the way.

A message appended or delivered to the embedded store is one SQLite transaction in WAL mode:
SQLite writes each page the transaction changed as a WAL frame, a 24-byte header and the
4 KiB page in two `pwrite`s, then `fdatasync`s the WAL. This script makes the same system
calls on a file in DIR (put it on the store's file system), with no SQLite and no server, and
prints the wall time and the CPU time of this process per commit, so a server's CPU per
message can be read against the floor its disk and kernel set:

    bench/disk_floor.py --dir /var/lib/herald --frames 12 --count 2000

Four patterns, each --count commits into a file of --frames frames per commit that wraps at
about 40 MiB, as the store's WAL does (its file is written once, then overwritten):

- `4k`: one 4 KiB write and `fdatasync` (the usual disk probe);
- `frames`: --frames frames as SQLite writes them, two `pwrite`s per frame, then `fdatasync`;
- `one-write`: the same bytes in one `pwrite`, then `fdatasync`;
- `frames-nosync`: the `pwrite`s alone (their share of the cost without the flush).
"""

import argparse
import os
import time

FRAME = 24 + 4096
WRAP = 10_000 * FRAME


def run(path, pattern, frames, count):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # Written once before timing, so every timed write overwrites allocated blocks as the
        # store's WAL does after its first wrap; growing the file costs more (a journal commit
        # per flush on ext4).
        os.pwrite(fd, b"\0" * (WRAP + 64 * FRAME), 0)
        os.fsync(fd)
        header, page = b"h" * 24, b"p" * 4096
        whole = (header + page) * frames
        times = []
        cpu0, offset = time.process_time(), 32
        for _ in range(count):
            t = time.perf_counter()
            if pattern == "4k":
                os.pwrite(fd, page, offset)
            elif pattern == "one-write":
                os.pwrite(fd, whole, offset)
            else:
                at = offset
                for _ in range(frames):
                    os.pwrite(fd, header, at)
                    os.pwrite(fd, page, at + 24)
                    at += FRAME
            if pattern != "frames-nosync":
                os.fdatasync(fd)
            times.append(time.perf_counter() - t)
            offset += len(page) if pattern == "4k" else frames * FRAME
            if offset > WRAP:
                offset = 32
        cpu = time.process_time() - cpu0
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    return times[len(times) // 2], times[len(times) * 9 // 10], cpu / count


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", default=".", help="a directory on the file system to measure")
    p.add_argument("--frames", type=int, default=12, help="WAL frames per commit")
    p.add_argument("--count", type=int, default=2000, help="commits per pattern")
    a = p.parse_args()
    path = os.path.join(a.dir, f".herald-disk-floor.{os.getpid()}")
    for pattern in ("4k", "frames", "one-write", "frames-nosync"):
        p50, p90, cpu = run(path, pattern, a.frames, a.count)
        print(
            f"{pattern:14} p50 {p50 * 1e3:.3f} ms  p90 {p90 * 1e3:.3f} ms  "
            f"CPU {cpu * 1e3:.3f} ms per commit"
        )


if __name__ == "__main__":
    main()
