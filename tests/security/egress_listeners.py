"""Real TCP listeners that record every connection, for the egress (SSRF) tests.

A listener answers each connection with a canned HTTP response (or a slow drip, or an endless
body) and keeps what the client sent, so a test can assert that nothing connected at all.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest


def http_answer(status: int, body: bytes = b"", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
            f"{headers}\r\n").encode() + body


@dataclass
class Listener:
    host: str
    port: int
    mode: str  # "answer" | "drip" (a byte at a time) | "endless" (a body that never ends)
    answer: bytes
    accepted: int = 0  # connections, counted at accept: a connection is what must not happen
    requests: list[bytes] = field(default_factory=list)

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        name = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"http://{name}:{self.port}{path}"


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    conn.settimeout(2)
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        return head + b"\r\n\r\n" + rest
    except OSError:
        return data


def _serve(listener: Listener, conn: socket.socket) -> None:
    with conn:
        listener.requests.append(_read_request(conn))
        try:
            if listener.mode == "drip":
                for byte in listener.answer:
                    conn.sendall(bytes([byte]))
                    time.sleep(0.2)
            elif listener.mode == "endless":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n")
                chunk = b"x" * 65536
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    conn.sendall(chunk)
            else:
                conn.sendall(listener.answer)
        except OSError:
            pass


@contextmanager
def listening(host: str = "127.0.0.1", *, mode: str = "answer",
              answer: bytes | None = None, port: int = 0) -> Iterator[Listener]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(16)
    server.settimeout(0.2)
    listener = Listener(host, server.getsockname()[1], mode, answer or http_answer(200, b"ok"))
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            listener.accepted += 1
            threading.Thread(target=_serve, args=(listener, conn), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join(2)
        server.close()


def loopback_name() -> str:
    """A host name (not "localhost") that this machine resolves to a loopback address: one from
    /etc/hosts, or the machine's own name."""
    candidates = []
    try:
        with open("/etc/hosts") as hosts:
            for line in hosts:
                fields = line.split("#", 1)[0].split()
                candidates += fields[1:]
    except OSError:
        pass
    candidates.append(socket.gethostname())
    for name in candidates:
        if name.startswith("localhost") or name.startswith("ip6-"):
            continue
        try:
            found = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
        except OSError:
            continue
        if found and all(ipaddress.ip_address(a).is_loopback for a in found):
            return name
    pytest.skip("no host name on this machine resolves to a loopback address")
