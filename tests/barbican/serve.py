#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Serves the Barbican API (a paste app) on one address for keyscope's tests and benchmark.

Why not wsgiref's server or gunicorn as they are: the application must run in one thread
(Barbican's sqlite session returned "database is locked" under gunicorn threads), yet one idle
keep-alive connection must not stall everybody else, and a client such as keyscoped should be
able to reuse its connection as it would against a production Barbican. So: one event loop per
process that multiplexes connections with select() and runs the WSGI application (through
wsgiref's handler) for one complete request at a time. TLS handshakes are bounded by a timeout.
--workers N forks N such processes on one listening socket (sqlite reads are safe in parallel).
"""
import argparse
import io
import os
import select
import signal
import socket
import ssl
import sys
import time
import urllib.parse
from wsgiref import handlers

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
IDLE_SECS = 60
IO_TIMEOUT = 10


class Writer:
    """wsgiref writes the response here. Its pieces (status and headers, then each part of the
    body) are gathered and sent at each flush, so that a response leaves in one write: a small
    second write would wait for the client's delayed ACK (Nagle), ~40 ms a request."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def write(self, data):
        self.buf += data

    def flush(self):
        if self.buf:
            data, self.buf = bytes(self.buf), bytearray()
            self.sock.sendall(data)


class Handler(handlers.SimpleHandler):
    http_version = "1.1"
    server_software = "keyscope-test-barbican"

    def __init__(self, keepalive, *a, **kw):
        super().__init__(*a, **kw)
        self.keepalive = keepalive

    def cleanup_headers(self):
        super().cleanup_headers()
        # A body without a length ends at the close; so does any HTTP/1.0 exchange.
        if "Content-Length" not in self.headers or not self.keepalive:
            self.keepalive = False
            self.headers["Connection"] = "close"

    def close(self):
        self.final_status = self.status
        super().close()

    def log_exception(self, exc_info):
        import traceback
        traceback.print_exception(*exc_info, file=sys.stderr)


class Conn:
    def __init__(self, sock, addr):
        self.sock = sock
        self.addr = addr
        self.buf = bytearray()
        self.last = time.monotonic()


def parse_request(conn, scheme, port):
    """Returns (environ, keepalive), None if more bytes are needed; raises ValueError."""
    end = conn.buf.find(b"\r\n\r\n")
    if end < 0:
        if len(conn.buf) > MAX_HEAD:
            raise ValueError("request head too long")
        return None
    lines = bytes(conn.buf[:end]).decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("bad request line")
    method, target, version = parts
    hdrs = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError("bad header line")
        hdrs[name.strip().lower()] = value.strip()
    if "transfer-encoding" in hdrs:
        raise ValueError("chunked request bodies are not supported")
    length = int(hdrs.get("content-length", "0") or "0")
    if length < 0 or length > MAX_BODY:
        raise ValueError("request body too large")
    if len(conn.buf) < end + 4 + length:
        return None
    body = bytes(conn.buf[end + 4:end + 4 + length])
    del conn.buf[:end + 4 + length]
    path, _, query = target.partition("?")
    env = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": urllib.parse.unquote(path, "latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": version,
        "REMOTE_ADDR": conn.addr[0] if conn.addr else "",
        "CONTENT_LENGTH": str(length) if "content-length" in hdrs else "",
        "CONTENT_TYPE": hdrs.get("content-type", ""),
        "wsgi.url_scheme": scheme,
    }
    for name, value in hdrs.items():
        if name in ("content-type", "content-length"):
            continue
        env["HTTP_" + name.upper().replace("-", "_")] = value
    connection = hdrs.get("connection", "").lower()
    keepalive = version == "HTTP/1.1" and "close" not in connection
    return env, keepalive, io.BytesIO(body)


def serve_one(conn, app, scheme, port, keepalive_ok, log):
    """Runs every complete request in conn's buffer; returns False when conn must close."""
    while True:
        try:
            req = parse_request(conn, scheme, port)
        except ValueError as e:
            msg = str(e).encode()
            conn.sock.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                      b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(msg), msg))
            return False
        if req is None:
            return True
        env, keepalive, body = req
        start = time.monotonic()
        h = Handler(keepalive and keepalive_ok, body, Writer(conn.sock), sys.stderr, env,
                multithread=False, multiprocess=False)
        writer = h.stdout
        h.run(app)
        writer.flush()
        if log:
            log.write("%d %s %s %s %.1fms\n" % (os.getpid(), env["REQUEST_METHOD"],
                              env["PATH_INFO"], (getattr(h, "final_status", None) or "-").split(" ")[0],
                              (time.monotonic() - start) * 1000))
            log.flush()
        if not h.keepalive:
            return False


def accept(lsock, ctx):
    try:
        sock, addr = lsock.accept()
    except (BlockingIOError, InterruptedError):
        return None
    sock.setblocking(True)
    sock.settimeout(IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ctx:
        try:
            sock = ctx.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError) as e:
            print("TLS handshake with %s failed: %s" % (addr, e), file=sys.stderr)
            sock.close()
            return None
    return Conn(sock, addr)


def loop(lsock, ctx, app, port, keepalive_ok, log):
    scheme = "https" if ctx else "http"
    conns = {}
    while True:
        rlist = [lsock] + list(conns)
        timeout = 5
        r, _, _ = select.select(rlist, [], [], timeout)
        for s in r:
            if s is lsock:
                c = accept(lsock, ctx)
                if c:
                    conns[c.sock] = c
                continue
            c = conns[s]
            keep = True
            try:
                data = s.recv(65536)
                while data and ctx and s.pending():
                    data += s.recv(65536)
                if not data:
                    keep = False
                else:
                    c.buf += data
                    c.last = time.monotonic()
                    keep = serve_one(c, app, scheme, port, keepalive_ok, log)
            except (OSError, ssl.SSLError):
                keep = False
            if not keep:
                del conns[s]
                try:
                    s.close()
                except OSError:
                    pass
        now = time.monotonic()
        for s, c in list(conns.items()):
            if now - c.last > IDLE_SECS:
                del conns[s]
                s.close()


def listen(host, port):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, port))
    lsock.listen(256)
    lsock.setblocking(False)
    return lsock


def load_app(a):
    if a.app:
        import importlib
        module, _, func = a.app.partition(":")
        return getattr(importlib.import_module(module), func)()
    from paste import deploy
    return deploy.loadapp("config:" + os.path.abspath(a.paste))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--paste", help="paste config of the API pipeline")
    p.add_argument("--app", help="MODULE:FUNCTION that returns the WSGI application (instead)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", help="server certificate chain (PEM); no --cert: plain HTTP")
    p.add_argument("--key", help="server private key (PEM)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--no-keepalive", action="store_true", help="close after every response")
    p.add_argument("--access-log", help="append one line per request here")
    a = p.parse_args()
    if not a.paste and not a.app:
        p.error("--paste or --app is needed")
    # Keystone's configuration parses sys.argv: it must not see ours.
    del sys.argv[1:]

    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    log = open(a.access_log, "a") if a.access_log else None
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if a.workers <= 1:
        # Listen only once the application is loaded: until then a client is refused at
        # once instead of waiting in the backlog.
        app = load_app(a)
        loop(listen(a.host, a.port), ctx, app, a.port, not a.no_keepalive, log)
        return
    # Create the database and sync the secret stores once, then let each worker open its own
    # sqlite connections (they must not be shared across fork).
    pid = os.fork()
    if pid == 0:
        load_app(a)
        os._exit(0)
    os.waitpid(pid, 0)
    lsock = listen(a.host, a.port)
    children = []
    for _ in range(a.workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            loop(lsock, ctx, load_app(a), a.port, not a.no_keepalive, log)
            os._exit(0)
        children.append(pid)

    def stop(*_):
        for c in children:
            try:
                os.kill(c, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    os.wait()
    stop()


if __name__ == "__main__":
    main()
