"""STARTTLS command injection (RFC 2595 §4, CVE-2011-0411 class): a command sent in clear text
after STLS, in the same packet, must be discarded, not executed once TLS is up.

Usage: stls_injection.py POP3_PORT
"""
import socket
import ssl
import sys

port = int(sys.argv[1])
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
f = raw.makefile("rb")
assert f.readline().startswith(b"+OK"), "greeting"
raw.sendall(b"STLS\r\nNOOP\r\n")  # NOOP is the injected command
line = f.readline()
assert line.startswith(b"+OK"), line
tls = ssl._create_unverified_context().wrap_socket(raw, server_hostname="localhost")
tf = tls.makefile("rb")
tls.sendall(b"QUIT\r\n")
first = tf.readline()
# Had the injected NOOP run, its "+OK" would come before QUIT's reply.
assert first.startswith(b"+OK bye"), first
print("ok")
