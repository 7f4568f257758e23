"""Answer checks the imaplib scripts share (imported from the script's own directory)."""
import imaplib


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
