"""Reads Server-Sent Events from Herald with urllib and prints them as JSON lines.

Usage: sse_read.py URL USER PASSWORD COUNT [LAST_EVENT_ID]

Prints one line per event: {"id": ..., "event": ..., "data": <the event object>}, stopping after
COUNT events. Comments (keep-alives) are skipped. Without credentials (USER "-") it prints the
HTTP status and the WWW-Authenticate challenges instead.
"""
import base64
import json
import sys
import urllib.error
import urllib.request

url, user, password, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
req = urllib.request.Request(url, headers={"Accept": "text/event-stream"})
if user != "-":
    token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    req.add_header("Authorization", "Basic " + token)
if len(sys.argv) > 5:
    req.add_header("Last-Event-ID", sys.argv[5])
try:
    resp = urllib.request.urlopen(req, timeout=20)
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "challenges": e.headers.get_all("WWW-Authenticate")}))
    sys.exit(0)
assert resp.status == 200, resp.status
assert resp.headers["Content-Type"] == "text/event-stream", resp.headers["Content-Type"]
seen = 0
fields = {}
data = []
while seen < count:
    line = resp.readline().decode("utf-8")
    assert line, "the stream ended early"
    line = line.rstrip("\r\n")
    if line == "":
        if data:
            print(json.dumps({"id": fields.get("id"), "event": fields.get("event"),
                              "data": json.loads("\n".join(data))}), flush=True)
            seen += 1
        fields, data = {}, []
    elif line.startswith(":"):
        continue
    else:
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "data":
            data.append(value)
        else:
            fields[key] = value
