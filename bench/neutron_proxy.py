#!/usr/bin/env python3
"""A tiny counting HTTP proxy in front of Neutron, for the benchmark.

Both kuryr daemons are pointed at it, so only their requests are counted (other users of the
shared Neutron bypass it). Each request gets its own upstream connection and the reply always
says `Connection: close`, which is what Neutron's uwsgi does anyway: the proxy changes nothing a
client can observe except a small, per-request constant delay, equal for both daemons.

One line per request is appended to the log file (tab separated):
    <unix time> <method> <path without query> <status> <upstream ms> <proxy ms> <created port ids>
where `proxy ms` is the time spent in the proxy itself (total minus upstream), so the harness can
report the proxy's overhead, and the last column lists (comma separated) the ids of the ports a
successful `POST .../ports` created (one, or several for a bulk create), so the harness can check
afterwards that none of them is left in Neutron, OVS or the host's links; empty otherwise.
"""
import argparse
import gzip
import json
import socket
import socketserver
import threading
import time
import zlib

HEADER_LIMIT = 256 * 1024
# Hop-by-hop headers that the proxy sets itself.
DROP_HEADERS = {b"connection", b"keep-alive", b"proxy-connection"}


def read_head(sock, buf):
    """Reads up to the end of the header block; returns (head, rest) or (None, buf) on EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
        if len(buf) > HEADER_LIMIT:
            raise ValueError("header block too large")
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def read_exact(sock, buf, n):
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError("connection closed inside a body")
        buf += chunk
    return buf[:n], buf[n:]


def read_chunked(sock, buf):
    """Decodes a chunked body; returns (body, rest)."""
    body = b""
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ValueError("connection closed inside a chunked body")
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        size = int(line.split(b";")[0].strip(), 16)
        data, buf = read_exact(sock, buf, size + 2)
        if size == 0:
            return body, buf
        body += data[:size]


def created_port_ids(method, path, status, headers, body):
    """Ids of the ports a successful POST .../ports created (bulk or single); [] otherwise."""
    if method != b"POST" or not path.rstrip("/").endswith("/ports") or not status.startswith("2"):
        return []
    try:
        enc = (header(headers, b"content-encoding") or b"").lower()
        if enc == b"gzip":
            body = gzip.decompress(body)
        elif enc == b"deflate":
            body = zlib.decompress(body)
        doc = json.loads(body)
        ports = doc.get("ports") or [doc.get("port") or {}]
        return [p["id"] for p in ports if isinstance(p, dict) and p.get("id")]
    except (ValueError, OSError, zlib.error, AttributeError, TypeError):
        return []


def parse_headers(head):
    lines = head.split(b"\r\n")
    return lines[0], [tuple(part.strip() for part in line.split(b":", 1)) for line in lines[1:] if b":" in line]


def header(headers, name):
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        client = self.request
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        # A client may send several requests on one connection; we answer each with
        # `Connection: close`, so at most one is served, like Neutron's uwsgi.
        head, buf = read_head(client, buf)
        if head is None:
            return
        t0 = time.monotonic()
        start, headers = parse_headers(head)
        method, target, _version = start.split(b" ", 2)
        if header(headers, b"transfer-encoding") is not None:
            body, buf = read_chunked(client, buf)
        else:
            body, buf = read_exact(client, buf, int(header(headers, b"content-length") or 0))
        out = [b"%s %s HTTP/1.1" % (method, target)]
        for key, value in headers:
            low = key.lower()
            if low in DROP_HEADERS or low in (b"transfer-encoding", b"content-length", b"host"):
                continue
            out.append(key + b": " + value)
        out.append(b"Host: " + self.server.upstream_hostport)
        out.append(b"Content-Length: %d" % len(body))
        out.append(b"Connection: close")
        request = b"\r\n".join(out) + b"\r\n\r\n" + body

        t_up = time.monotonic()
        with socket.create_connection(self.server.upstream, timeout=300) as up:
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up.sendall(request)
            rhead, rbuf = read_head(up, b"")
            if rhead is None:
                raise ValueError("upstream closed without a reply")
            rstart, rheaders = parse_headers(rhead)
            if header(rheaders, b"transfer-encoding") is not None:
                rbody, _ = read_chunked(up, rbuf)
            elif header(rheaders, b"content-length") is not None:
                rbody, _ = read_exact(up, rbuf, int(header(rheaders, b"content-length")))
            else:
                rbody = rbuf
                while True:
                    chunk = up.recv(65536)
                    if not chunk:
                        break
                    rbody += chunk
        upstream_ms = (time.monotonic() - t_up) * 1000.0

        rout = [rstart]
        for key, value in rheaders:
            low = key.lower()
            if low in DROP_HEADERS or low in (b"transfer-encoding", b"content-length"):
                continue
            rout.append(key + b": " + value)
        rout.append(b"Content-Length: %d" % len(rbody))
        rout.append(b"Connection: close")
        client.sendall(b"\r\n".join(rout) + b"\r\n\r\n" + rbody)
        total_ms = (time.monotonic() - t0) * 1000.0

        status = rstart.split(b" ", 2)[1].decode()
        path = target.split(b"?", 1)[0].decode(errors="replace")
        created = ",".join(created_port_ids(method, path, status, rheaders, rbody))
        line = "%.3f\t%s\t%s\t%s\t%.1f\t%.2f\t%s\n" % (
            time.time(), method.decode(), path, status, upstream_ms, total_ms - upstream_ms, created)
        with self.server.log_lock:
            self.server.log.write(line)
            self.server.log.flush()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:9797")
    p.add_argument("--upstream", default="127.0.0.1:9696")
    p.add_argument("--log", required=True)
    a = p.parse_args()
    lhost, lport = a.listen.rsplit(":", 1)
    uhost, uport = a.upstream.rsplit(":", 1)
    srv = Server((lhost, int(lport)), Handler)
    srv.upstream = (uhost, int(uport))
    srv.upstream_hostport = a.upstream.encode()
    srv.log = open(a.log, "a", buffering=1)
    srv.log_lock = threading.Lock()
    srv.serve_forever()


if __name__ == "__main__":
    main()
