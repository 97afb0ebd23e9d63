#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A misbehaving key manager for keyscope's fault tests: answers every request in one bad way.

modes:
  silent          accept the connection (and the TLS handshake), read, never answer
  html500         500 Internal Server Error with an HTML body (~400 bytes), to every request
  forbidden       Barbican's 403 answers (JSON, ~150 bytes), the payload's before the metadata's
  truncated       metadata fine; the payload announces 32 bytes, sends 10 and closes
  truncated-json  the metadata's JSON stops half-way (Content-Length larger than sent);
                  the payload is fine
  big             a 10 MB body (with Content-Length) to every request
  big-chunked     a 10 MB body in chunks, no Content-Length, to every request
  trickle         headers with a plausible length, then one byte a second
  garbage         a line that is not HTTP, then close
  redirect        302 to --location (the same path), to every request
  record          write one line per connection to --record, answer 404
"""
import argparse
import json
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIG = 10 * 1024 * 1024


def metadata(handler):
    return json.dumps({
        "status": "ACTIVE", "secret_type": "symmetric", "algorithm": "aes",
        "bit_length": 256, "mode": "xts", "expiration": None, "name": "fault",
        "content_types": {"default": "application/octet-stream"},
        "secret_ref": "%s%s" % (handler.server.base, handler.path.split("?")[0]),
        "creator_id": "fault", "created": "2026-01-01T00:00:00", "updated": None,
    }).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "keyscope-fault"

    def log_message(self, fmt, *args):
        if self.server.log:
            self.server.log.write("%s %s\n" % (self.server.mode, fmt % args))
            self.server.log.flush()

    def handle(self):
        mode = self.server.mode
        if mode == "silent":
            self.connection.settimeout(None)
            try:
                while self.connection.recv(4096):
                    pass
            except OSError:
                pass
            return
        if mode == "garbage":
            self.wfile.write(b"SSH-2.0-not-http\r\n")
            return
        super().handle()

    def send(self, code, body, ctype="application/json", length=None, extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def answer(self):
        mode = self.server.mode
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        payload = self.path.split("?")[0].endswith("/payload")
        if mode == "html500":
            # what a proxy in front of a broken Barbican sends: longer than any key
            body = (b"<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n"
                    b"<title>500 Internal Server Error</title>\n</head><body>\n"
                    b"<h1>Internal Server Error</h1>\n<p>The server encountered an internal "
                    b"error or misconfiguration and was unable to complete your request.</p>\n"
                    b"<hr>\n<address>Apache/2.4.57 (Debian) Server at 127.0.0.1</address>\n"
                    b"</body></html>\n")
            self.send(500, body, "text/html")
        elif mode == "forbidden":
            # Barbican's own 403 bodies; the payload's comes first
            if payload:
                body = (b'{"code": 403, "title": "Forbidden", "description": "Secret payload '
                        b'retrieval attempt not allowed - please review your user/project '
                        b'privileges"}')
            else:
                time.sleep(0.3)
                body = (b'{"code": 403, "title": "Forbidden", "description": "Secret '
                        b'retrieval attempt not allowed - please review your user/project '
                        b'privileges"}')
            self.send(403, body)
        elif mode == "truncated":
            if payload:
                self.send(200, b"0123456789", "application/octet-stream", length=32)
                self.close_connection = True
            else:
                self.send(200, metadata(self))
        elif mode == "truncated-json" and payload:
            self.send(200, b"k" * 32, "application/octet-stream")
        elif mode == "truncated-json":
            body = metadata(self)
            self.send(200, body[:len(body) // 2], length=len(body))
            self.close_connection = True
        elif mode == "big":
            self.send_response(200)
            ctype = "application/octet-stream" if payload else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            self.write_big(chunked=False)
        elif mode == "big-chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.write_big(chunked=True)
        elif mode == "trickle":
            # plausible lengths, so that only the pace is wrong
            n = 32 if payload else 400
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream" if payload
                             else "application/json")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            try:
                for _ in range(n):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                pass
            self.close_connection = True
        elif mode == "redirect":
            self.send(302, b"", "text/plain",
                      extra=[("Location", self.server.location + self.path)])
        else:
            self.send(404, b'{"code": 404, "title": "Not Found"}')

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer

    def write_big(self, chunked):
        block = b'{"x": "' + b"a" * (64 * 1024 - 7)
        sent = 0
        try:
            while sent < BIG:
                part = block[:BIG - sent]
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                else:
                    self.wfile.write(part)
                sent += len(part)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, ctx):
        self.ctx = ctx
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.record:
            # counted before the handshake: a connection at all is what a test looks for
            with open(self.record, "a") as f:
                f.write("connection from %s\n" % (addr[0],))
        if self.ctx:
            sock.settimeout(10)
            sock = self.ctx.wrap_socket(sock, server_side=True)
            sock.settimeout(None)
        return sock, addr

    def handle_error(self, request, client_address):
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--location", default="")
    p.add_argument("--record")
    p.add_argument("--log")
    a = p.parse_args()
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    srv = Server((a.host, a.port), ctx)
    srv.mode = a.mode
    srv.location = a.location
    srv.record = a.record
    srv.log = open(a.log, "a") if a.log else None
    srv.base = "%s://%s:%d" % ("https" if ctx else "http", a.host, a.port)
    srv.serve_forever()


if __name__ == "__main__":
    main()
