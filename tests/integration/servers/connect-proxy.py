#!/usr/bin/env python3
"""A loopback HTTP CONNECT proxy for the proxy tests: a real tunnel, with a log.

    connect-proxy.py --ready-file PATH --log PATH [--parent-pid PID]

Listens on 127.0.0.1 (a port the kernel picks), writes
``{"url": "http://127.0.0.1:PORT", "pid": PID}`` to the ready file once it
listens, and appends one JSON line per request to the log:

    {"method": "CONNECT", "target": "127.0.0.1:8443", "allowed": true}
    {"method": "POST", "target": "http://127.0.0.1:4444/oauth2/token", "allowed": false}

CONNECT is tunnelled only to loopback targets (127.0.0.0/8, ::1, localhost);
anything else is answered 403. A plain-http request in absolute form (what a
client sends to an HTTP proxy for an http:// URL) is logged and answered 403:
tokenwell must never send a plain-http token request (with its credentials)
to a proxy, so the tests assert that no such line appears. The request line
and headers are never logged (they could hold credentials).

Stops on SIGTERM or SIGINT, when the parent process (--parent-pid) is gone,
and after --max-seconds (default 600), whichever comes first.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import socketserver
import sys
import threading
import time

IDLE_SECONDS = 30
MAX_HEADER_BYTES = 16 * 1024


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, log_path: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.log_path = log_path
        self.log_lock = threading.Lock()

    def record(self, entry: dict) -> None:
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.log_lock, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(line)
            log.flush()


class Handler(socketserver.BaseRequestHandler):
    server: Proxy

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(IDLE_SECONDS)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
                if len(head) > MAX_HEADER_BYTES:
                    conn.sendall(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
                    return
        except OSError:
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        method, target = (parts[0], parts[1]) if len(parts) >= 2 else ("?", "?")
        if method != "CONNECT":
            # Log the URL without its query (a query could carry a credential).
            self.server.record({"method": method, "target": target.split("?", 1)[0], "allowed": False})
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        allowed = is_loopback(host) and port.isdigit()
        self.server.record({"method": "CONNECT", "target": target, "allowed": allowed})
        if not allowed:
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        with upstream:
            conn.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                upstream.sendall(rest)
            pipe(conn, upstream)


def pipe(a: socket.socket, b: socket.socket) -> None:
    """Copies both ways until either side closes or IDLE_SECONDS pass idle."""
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], IDLE_SECONDS)
        if not readable:
            return
        for source in readable:
            target = b if source is a else a
            try:
                data = source.recv(65536)
                if not data:
                    return
                target.sendall(data)
            except OSError:
                return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()

    open(args.log, "a", encoding="utf-8").close()
    server = Proxy(args.log)
    port = server.server_address[1]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as ready:
        json.dump({"url": f"http://127.0.0.1:{port}", "pid": os.getpid()}, ready)
    os.replace(tmp, args.ready_file)

    deadline = time.monotonic() + args.max_seconds
    while not stop.wait(0.2):
        if args.parent_pid and not parent_alive(args.parent_pid):
            break
        if time.monotonic() > deadline:
            print("connect-proxy: --max-seconds reached, stopping", file=sys.stderr)
            break
    server.shutdown()
    server.server_close()
    return 0


def parent_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    sys.exit(main())
