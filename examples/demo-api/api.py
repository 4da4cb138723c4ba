#!/usr/bin/env python3
"""A tiny "billing API" for the demo: it accepts a request only with a bearer
token that Ory Hydra's admin introspection endpoint says is active, and answers
with who called. Listens on 127.0.0.1 only.

    python3 examples/demo-api/api.py --introspect http://127.0.0.1:4445/admin/oauth2/introspect --port-file /tmp/port
"""

import argparse
import json
import sys
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--introspect", required=True, help="Hydra admin introspection URL")
    parser.add_argument("--port-file", required=True, help="write the chosen port here once listening")
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                return self.reply(401, {"error": "missing bearer token"})
            data = urllib.parse.urlencode({"token": auth[len("Bearer "):]}).encode()
            with urllib.request.urlopen(args.introspect, data=data, timeout=5) as response:
                info = json.load(response)
            if not info.get("active"):
                return self.reply(401, {"error": "token is not active"})
            self.reply(200, {"invoices": 3, "caller": info.get("client_id"), "scope": info.get("scope")})

        def reply(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if status == 401:
                self.send_header("WWW-Authenticate", "Bearer")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, fmt: str, *values) -> None:
            sys.stderr.write("demo-api: " + fmt % values + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os

    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
