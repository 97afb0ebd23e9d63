#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fake-journald.py SOCKET OUT: journald's native protocol on SOCKET (what sd_journal_sendv()
writes to /run/systemd/journal/socket), each entry appended to OUT as one JSON object per line,
as `journalctl -o json` would show its fields. For host tests, run in a mount namespace of
their own with a tmpfs on /run/systemd, so no real journal is touched. sd_notify(3) messages
are KEY=VALUE lines too: on a socket that NOTIFY_SOCKET names it records READY=1 and STATUS=.
SIGTERM: the entries still queued are read, then it exits."""
import array
import json
import os
import signal
import socket
import struct
import sys

stopping = False


def on_term(signo, frame):
    global stopping
    stopping = True


def parse(data):
    """KEY=VALUE\\n, or KEY\\n<le64 length><bytes>\\n for values with a newline."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.find(b"\n", i)
        if nl < 0:  # sd_notify's last line has no newline
            nl = len(data)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode(errors="replace")
    return fields


def receive(sock):
    fds = array.array("i")
    msg, anc, _, _ = sock.recvmsg(1 << 20, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, d in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(d[:len(d) - len(d) % fds.itemsize])
    for fd in fds:  # a large entry comes as a sealed memfd
        with os.fdopen(fd, "rb") as f:
            msg = f.read()
    return msg


def main():
    path, out = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    signal.signal(signal.SIGTERM, on_term)
    with open(out, "a") as f:
        while True:
            try:
                data = receive(sock)
            except socket.timeout:
                if stopping:
                    return
                continue
            except InterruptedError:
                continue
            f.write(json.dumps(parse(data)) + "\n")
            f.flush()


main()
