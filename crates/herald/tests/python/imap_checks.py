"""Answer checks the imaplib scripts share (imported from the script's own directory)."""
import imaplib
import time


def ok(resp):
    """The data of an OK answer; anything else fails the script."""
    typ, data = resp
    assert typ == "OK", (typ, data)
    return data


def refused(fn, *args):
    """The text of a NO: imaplib raises for some commands and returns NO for others."""
    try:
        typ, data = fn(*args)
    except imaplib.IMAP4.error as e:
        return str(e)
    assert typ == "NO", (typ, data)
    return b" ".join(d for d in data if isinstance(d, bytes)).decode()


def read_until(conn, wanted, within=1.0):
    """Reads unsolicited lines until every predicate in `wanted` matched one; fails if that
    takes longer than `within` seconds. Returns the lines read."""
    start = time.monotonic()
    lines = []
    pending = list(wanted)
    while pending:
        left = within - (time.monotonic() - start)
        assert left > 0, ("not within %.1f s" % within, lines, pending)
        conn.sock.settimeout(left)
        try:
            line = conn.readline().decode()
        except TimeoutError:
            raise AssertionError(("not within %.1f s" % within, lines, pending))
        assert line, ("connection closed", lines)
        lines.append(line.rstrip("\r\n"))
        pending = [p for p in pending if not p(lines[-1])]
    conn.sock.settimeout(None)
    return lines
