"""Drives IMAP METADATA (RFC 5464) with Python's imaplib, which has no METADATA helpers: the
commands go through _simple_command, and those carrying a literal in the middle as raw bytes
(LITERAL+). Sets, reads and removes private and shared entries of mailboxes and of the server,
checks the answers to limits and bad names, and that entries follow RENAME and DELETE. The
server runs with [metadata] max_value_bytes = 64 and max_entries_per_mailbox = 4.

Usage: imap_metadata.py PORT USER PASSWORD ADMIN ADMIN_PASSWORD
Prints "ok" when every check held.
"""
import imaplib
import sys

port, user, password, admin, admin_pw = sys.argv[1:6]
port = int(port)
for name in ("GETMETADATA", "SETMETADATA"):
    imaplib.Commands[name] = ("AUTH", "SELECTED")


def connect(u, p):
    imap = imaplib.IMAP4("127.0.0.1", port)
    typ, _ = imap.login(u, p)
    assert typ == "OK", typ
    return imap


def cmd(imap, name, *args):
    """A command and its METADATA responses (imaplib files the tagged reply's `[METADATA …]`
    response code under the same name; those are left out)."""
    typ, data = imap._simple_command(name, *args)
    _, meta = imap._untagged_response(typ, data, "METADATA")
    codes = (b"LONGENTRIES", b"MAXSIZE", b"TOOMANY", b"NOPRIVATE")
    return typ, data, [
        m for m in meta
        if m is not None and not (isinstance(m, bytes) and m.split(b" ")[0] in codes)
    ]


def get(imap, *args):
    typ, data, meta = cmd(imap, "GETMETADATA", *args)
    assert typ == "OK", (typ, data)
    return meta, data


def ok(imap, name, *args):
    typ, data, _ = cmd(imap, name, *args)
    assert typ == "OK", (name, args, typ, data)


def no(imap, code, name, *args):
    typ, data, _ = cmd(imap, name, *args)
    assert typ == "NO", (name, args, typ, data)
    assert data[0].startswith(code), (code, data)


def bad(imap, name, *args):
    try:
        imap._simple_command(name, *args)
    except imaplib.IMAP4.error as e:
        assert "invalid metadata entry name" in str(e) or "syntax" in str(e), e
    else:
        raise AssertionError("accepted: %s %s" % (name, args))


def raw(imap, line):
    """Sends one raw command (its literals LITERAL+), returns the lines up to its tagged reply."""
    tag = imap._new_tag()
    imap.send(tag + b" " + line + b"\r\n")
    out = []
    while True:
        got = imap._get_line()
        out.append(got)
        if got.startswith(tag + b" "):
            return out


a = connect(user, password)
typ, caps = a.capability()
assert b" METADATA " in caps[0] + b" " and b"METADATA-SERVER" in caps[0], caps

# Mailbox entries: private and shared, a NIL for what is not set, names in any case.
ok(a, "SETMETADATA", "INBOX", '(/private/Comment "My comment" /shared/vendor/x "X")')
meta, _ = get(a, "INBOX", "(/private/comment /shared/vendor/x /shared/none)")
assert meta == [
    b'INBOX (/private/comment "My comment" /shared/vendor/x "X" /shared/none NIL)'
], meta

# A binary value (literal8) in the middle of the command, and back as a literal8.
lines = raw(a, b"SETMETADATA INBOX (/private/bin ~{4+}\r\n\x00\x01\r\n)")
assert lines[-1].split(b" ", 1)[1].startswith(b"OK"), lines
meta, _ = get(a, "INBOX", "/private/bin")
assert meta == [(b"INBOX (/private/bin ~{4}", b"\x00\x01\r\n"), b")"], meta

# DEPTH and MAXSIZE: the comment (10 octets) is left out and named in LONGENTRIES.
meta, data = get(a, "(DEPTH infinity MAXSIZE 5)", "INBOX", "/private")
assert meta == [(b"INBOX (/private/bin ~{4}", b"\x00\x01\r\n"), b")"], meta
assert data[0].startswith(b"[METADATA LONGENTRIES 10]"), data

# NIL removes.
ok(a, "SETMETADATA", "INBOX", "(/private/comment NIL)")
meta, _ = get(a, "INBOX", "/private/comment")
assert meta == [b"INBOX (/private/comment NIL)"], meta

# Server entries: private ones for everyone, shared ones for administrators only.
ok(a, "SETMETADATA", '""', '(/private/vendor/ui "dark")')
no(a, b"[NOPERM]", "SETMETADATA", '""', '(/shared/admin "x")')

# Limits: a value over 64 octets, a literal announced over it (refused before it is sent),
# and a fifth entry on a mailbox that allows four (two are there, three more asked).
no(a, b"[METADATA MAXSIZE 64]", "SETMETADATA", "INBOX", '(/private/big "%s")' % ("x" * 65))
lines = raw(a, b"SETMETADATA INBOX (/private/big {100}")
assert len(lines) == 1 and b"NO [METADATA MAXSIZE 64]" in lines[0], lines
no(a, b"[METADATA TOOMANY]", "SETMETADATA", "INBOX", '(/private/a "1" /private/b "2" /private/c "3")')
meta, _ = get(a, "(DEPTH infinity)", "INBOX", "(/private /shared)")
assert b"/private/a" not in b"".join(m if isinstance(m, bytes) else m[0] for m in meta), meta

# Bad entry names are BAD.
bad(a, "SETMETADATA", "INBOX", '(/comment "x")')
bad(a, "SETMETADATA", "INBOX", '("/private/a*" "x")')
bad(a, "SETMETADATA", "INBOX", '(/private/a/ "x")')
bad(a, "GETMETADATA", "INBOX", "/private/a//b")

# Entries move with RENAME and go with DELETE.
ok(a, "CREATE", "Work")
ok(a, "SETMETADATA", "Work", '(/shared/comment "w")')
ok(a, "RENAME", "Work", "Play")
meta, _ = get(a, "Play", "/shared/comment")
assert meta == [b'Play (/shared/comment "w")'], meta
ok(a, "DELETE", "Play")
ok(a, "CREATE", "Play")
meta, _ = get(a, "Play", "/shared/comment")
assert meta == [b"Play (/shared/comment NIL)"], meta
no(a, b"[NONEXISTENT]", "GETMETADATA", "Nope", "/shared/comment")

# An administrator sets a shared server entry; every user reads it beside their own.
r = connect(admin, admin_pw)
ok(r, "SETMETADATA", '""', '(/shared/admin "mailto:root@example.org")')
r.logout()
meta, _ = get(a, '""', "(/shared/admin /private/vendor/ui)")
assert meta == [b'"" (/shared/admin "mailto:root@example.org" /private/vendor/ui "dark")'], meta
a.logout()
print("ok")
