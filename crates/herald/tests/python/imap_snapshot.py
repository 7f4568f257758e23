"""Prints, as JSON, everything an import must carry over from one IMAP account: per mailbox
its UIDVALIDITY and UIDNEXT, and per message its UID, flags (without \\Recent), INTERNALDATE
(seconds since the epoch) and the SHA-256 of its content. Run against Herald and against the
server imported from, the two outputs can be compared.

Usage: imap_snapshot.py PORT USER PASSWORD

Mailbox names are printed with the server's hierarchy separator replaced by `/`.
"""
import datetime
import hashlib
import imaplib
import json
import re
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
M = imaplib.IMAP4("127.0.0.1", port)
M.login(user, password)
typ, data = M.list('""', "*")
assert typ == "OK", (typ, data)
LIST = re.compile(rb'\((?P<attrs>[^)]*)\) (?P<sep>NIL|"(?:[^"\\]|\\.)*") (?P<name>.*)$')
boxes = {}
for line in data:
    if isinstance(line, tuple):  # a name sent as a literal
        head, name = line
        m = LIST.match(head.rsplit(b" ", 1)[0] + b" x")
        raw = name
    else:
        m = LIST.match(line)
        raw = m.group("name")
        if raw.startswith(b'"'):
            raw = raw[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
    attrs = m.group("attrs").lower().split()
    if b"\\noselect" in attrs or b"\\nonexistent" in attrs:
        continue
    sep = m.group("sep").strip(b'"').decode()
    name = raw.decode()
    boxes[name.replace(sep, "/") if sep and sep != "NIL" else name] = name

out = {}
for shown, name in sorted(boxes.items()):
    quoted = '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')
    typ, data = M.status(quoted, "(UIDVALIDITY UIDNEXT MESSAGES)")
    assert typ == "OK", (name, typ, data)
    status = dict(re.findall(rb"(UIDVALIDITY|UIDNEXT|MESSAGES) (\d+)", data[0]))
    typ, _ = M.select(quoted, readonly=True)
    assert typ == "OK", (name, typ)
    messages = []
    if int(status[b"MESSAGES"]) > 0:
        typ, data = M.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        assert typ == "OK", (typ, data)
        current = None
        for item in data:
            if isinstance(item, tuple):
                current = [item[0], item[1]]
                messages.append(current)
            elif current is not None and item is not None:
                current[0] += item
        rows = []
        for meta, body in messages:
            uid = int(re.search(rb"UID (\d+)", meta).group(1))
            flags = sorted(
                f.decode()
                for f in re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).split()
                if f.lower() != b"\\recent"
            )
            date = re.search(rb'INTERNALDATE "([^"]+)"', meta).group(1).decode().strip()
            when = datetime.datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z").timestamp()
            rows.append([uid, flags, int(when), hashlib.sha256(body).hexdigest()])
        messages = sorted(rows)
    out[shown] = {
        "uidvalidity": int(status[b"UIDVALIDITY"]),
        "uidnext": int(status[b"UIDNEXT"]),
        "messages": messages,
    }
M.logout()
print(json.dumps(out, indent=1, sort_keys=True))
