#!/usr/bin/env python3
"""A second opinion on the MIME structure of the .eml files in this folder.

Prints, for each message given on the command line, the tree IMAP's BODYSTRUCTURE describes,
as seen by Python's standard `email` package (compat32 policy), one node per line:

    == NAME.eml
    TEXT            MULTIPART/MIXED
    1               TEXT/PLAIN size=34 lines=1
    2               MESSAGE/RFC822 size=946 lines=52
    2.TEXT          MULTIPART/MIXED
    2.1             TEXT/PLAIN size=15 lines=1

The first column is where the node's bytes are in IMAP terms: a part number as RFC 3501 §6.4.5
numbers it (`BODY[2.1]`), or `TEXT` / `N.TEXT` for a multipart that is the body of the message
or of the embedded message N (it has no number of its own). Sizes are octets of the body as
stored (before any transfer decoding), lines are counted for TEXT/* and MESSAGE/RFC822 only,
as BODYSTRUCTURE does: the number of LFs, plus one for a last line without a line ending.

`herald-imap/tests/mime_golden.rs` runs this and compares it with the tree it reads back from
Herald's BODYSTRUCTURE. Standard library only.

How the email package is used, and why:

* The feed parser decides on boundaries, headers, digest defaults and line endings; nothing
  here re-implements MIME.
* The email package parses a message/* body into a Message object and keeps no bytes of it, so
  the embedded message's size could not be measured. While parsing, a Message subclass
  therefore answers `application/octet-stream` for any message/* type: the parser keeps the
  body as an opaque payload (it still ends it at the enclosing boundary and drops the line break
  that belongs to the delimiter, as for any part). Its bytes are measured, then decoded if
  transfer-encoded, and parsed again as a message on their own. Only message/rfc822 is descended
  into: IMAP4rev1 describes every other message/* type as a basic body.
"""

import email
import email.message
import email.policy
import sys


class _Part(email.message.Message):
    """A Message that, while `opaque_messages` is set, hides message/* types from the parser."""

    opaque_messages = False

    def get_content_type(self):
        ctype = super().get_content_type()
        if _Part.opaque_messages and ctype.startswith("message/"):
            return "application/octet-stream"
        return ctype


def parse(data):
    """Parses bytes with message/* bodies kept as opaque payloads."""
    _Part.opaque_messages = True
    try:
        return email.message_from_bytes(data, _class=_Part, policy=email.policy.compat32)
    finally:
        _Part.opaque_messages = False


def payload_bytes(part):
    """The part's body as stored.

    `_payload` rather than `get_payload()`: the latter re-decodes 8-bit text by its charset.
    The bytes parser keeps every non-ASCII byte as a surrogate, so this gives them back exactly.
    """
    payload = part._payload
    if payload is None:
        return b""
    return payload.encode("ascii", "surrogateescape")


def lines(body):
    return body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)


def walk(msg, prefix, out):
    """Describes the message `msg` whose part numbers start with `prefix` ("" at the top)."""
    if msg.is_multipart():
        out.append((f"{prefix}.TEXT" if prefix else "TEXT", msg))
        children(msg, prefix, out)
    else:
        leaf(msg, f"{prefix}.1" if prefix else "1", out)


def children(multipart, prefix, out):
    for i, part in enumerate(multipart.get_payload(), start=1):
        number = f"{prefix}.{i}" if prefix else str(i)
        if part.is_multipart():
            out.append((number, part))
            children(part, number, out)
        else:
            leaf(part, number, out)


def leaf(part, number, out):
    out.append((number, part))
    if part.get_content_type() == "message/rfc822":
        # Decoded if transfer-encoded, as Herald does (see mime.rs): the nested structure is
        # that of the message the part carries.
        inner = part.get_payload(decode=True) or b""
        walk(parse(inner), number, out)


def describe(number, part):
    ctype = part.get_content_type().upper()
    if part.is_multipart():
        return f"{number:<15} {ctype}"
    body = payload_bytes(part)
    line = f"{number:<15} {ctype} size={len(body)}"
    if ctype.startswith("TEXT/") or ctype == "MESSAGE/RFC822":
        line += f" lines={lines(body)}"
    return line


def main(paths):
    for path in paths:
        with open(path, "rb") as f:
            msg = parse(f.read())
        nodes = []
        walk(msg, "", nodes)
        print(f"== {path.rsplit('/', 1)[-1]}")
        for number, part in nodes:
            print(describe(number, part))


if __name__ == "__main__":
    main(sys.argv[1:])
