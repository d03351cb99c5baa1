#!/usr/bin/env python3
"""hostile_receiver.py - a postback receiver that misbehaves, for
tests/attack_test.sh: raw sockets, so that it can send what no HTTP
library would. Usage: hostile_receiver.py PORT LOG. Paths:
  /bigbody  200 OK, then a body without end (64 KiB blocks for 10 s)
  /bighead  200 OK, then header lines without end (1 KiB each, 10 s)
  /gone     410 Gone (a final failure: the delivery is dead at once)
  anything else: 200 OK "ok"
Each request is logged as "got PATH" when its headers are in.
"""
import socket
import sys
import threading
import time

port = int(sys.argv[1])
log = open(sys.argv[2], "a", buffering=1)


def handle(c):
    try:
        c.settimeout(15)
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d:
                return
            data += d
        path = data.split(b" ")[1].decode()
        log.write("got %s\n" % path)
        t0 = time.time()
        if path == "/bigbody":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n")
            block = b"x" * 65536
            while time.time() - t0 < 10:
                c.sendall(block)
        elif path == "/bighead":
            c.sendall(b"HTTP/1.1 200 OK\r\n")
            i = 0
            while time.time() - t0 < 10:
                c.sendall(b"X-H%d: %s\r\n" % (i, b"y" * 1000))
                i += 1
        elif path == "/gone":
            c.sendall(b"HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n")
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except OSError:
        pass  # the worker hung up: what these paths are for
    finally:
        c.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
log.write("receiver: listening\n")
while True:
    conn, _ = s.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
