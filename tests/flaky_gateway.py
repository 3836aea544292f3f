#!/usr/bin/env python3
"""A gateway in front of `veil serve` that answers 502 Bad Gateway to the first request of each method and path
(or to every request with --always), as nginx or HAProxy do when the replica they chose dies with the request,
and forwards the others. Prints "listening on port N", then serves until killed; each 502 is logged to stderr.
    flaky_gateway.py UPSTREAM_URL [--always]"""
import http.server
import sys
import urllib.error
import urllib.request

upstream, always = sys.argv[1].rstrip("/"), "--always" in sys.argv[2:]
seen = set()


class Gateway(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        key = (self.command, self.path.split("?")[0])
        if always or key not in seen:
            seen.add(key)
            sys.stderr.write("502 %s %s\n" % key)
            sys.stderr.flush()
            answer = b"<html>502 Bad Gateway</html>\n"
            self.send_response(502)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        req = urllib.request.Request(upstream + self.path, data=body, method=self.command)
        for h in ("Authorization", "Content-Type"):
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, headers, data = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, data = e.code, e.headers, e.read()
        self.send_response(status)
        for h in ("Content-Type", "Retry-After"):
            if headers.get(h):
                self.send_header(h, headers[h])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = relay

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
print("listening on port %d" % server.server_address[1], flush=True)
server.serve_forever()
