"""The egress guard: every server-side request to a URL a tenant gave goes through here.

A tenant-given URL must never reach this deployment's own network (loopback services such as
Redis and PostgreSQL, cloud metadata at 169.254.169.254, private ranges). So:

- the URL is parsed strictly (http/https, no credentials) and its host normalised by the
  resolver and ``ipaddress``, never by string matching (``2130706433``, ``0x7f000001``,
  ``127.1``, ``0177.0.0.1`` and ``[::ffff:127.0.0.1]`` are all 127.0.0.1);
- the host is resolved once, every address is checked, and the connection goes to exactly the
  checked address (no second lookup a rebinding DNS server could answer differently), while
  the Host header, TLS SNI and certificate check still use the host name;
- no proxies from the environment, no redirects, a bounded read and one total deadline.

``ATELIER_EGRESS_ALLOW`` (CIDRs and/or host names) opens holes for development and tests.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpcore

from app.core.settings import get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# Explicit, so the verdict does not depend on the Python version's idea of "global".
_BLOCKED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
    "3fff::/20", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
RESOLVES_INTERNAL = "refused: resolves to a non-public address"
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class EgressError(Exception):
    """A request that did not get an answer; ``reason`` is short and safe to show tenants."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Refused(EgressError):
    """The guard refused the URL or its addresses; no connection was made."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower-case ASCII (IDNA), no brackets, no trailing dot
    port: int
    path: str  # path and query, as sent in the request line
    address: IPAddress | None  # set when the host is an address literal (any spelling)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class Answer:
    status: int
    address: str  # the address the connection went to (the one that was checked)


def literal_address(host: str) -> IPAddress | None:
    """The address a host literal means, in any spelling the resolver would accept."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:  # the legacy forms: 2130706433, 0x7f000001, 127.1, 0177.0.0.1
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def why_not_public(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be reached from the server (None when it is a public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped (link-local) address"
        for inner in _embedded_v4(ip):
            if why_not_public(inner):
                return f"an IPv6 form of {inner}, which is not public"
        if ip.ipv4_mapped is not None:
            return None  # a mapped public IPv4 address is that public address
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private or any(ip in net for net in _BLOCKED) or ip.is_reserved:
        return "a private or reserved address"
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class AllowList:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        networks, names = [], []
        for item in (p.strip() for p in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                names.append(item.lower().rstrip("."))
        return cls(tuple(networks), tuple(names))

    def allows_name(self, host: str) -> bool:
        # "name" is that exact host; ".name" or "*.name" also its subdomains.
        for name in self.names:
            suffix = name.removeprefix("*")
            if host == name or (suffix.startswith(".") and host.endswith(suffix)):
                return True
        return False

    def allows_address(self, ip: IPAddress) -> bool:
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        return any(a in net for net in self.networks for a in (ip, mapped) if a is not None)


def allow_list() -> AllowList:
    return AllowList.parse(get_settings().egress_allow)


def parse(url: str) -> Target:
    """The request target of ``url``; Refused when it is not an http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise Refused("refused: not a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise Refused("refused: must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise Refused("refused: must not carry credentials")
    raw = (parts.hostname or "").rstrip(".")
    if not raw:
        raise Refused("refused: must name a host")
    try:
        host = raw.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise Refused("refused: not a valid host name") from exc
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, literal_address(host))


def _refuse_without_lookup(target: Target, allowed: AllowList) -> None:
    if allowed.allows_name(target.host):
        return
    if target.address is not None:
        why = why_not_public(target.address)
        if why and not allowed.allows_address(target.address):
            raise Refused(f"refused: {target.address} is {why}")
    elif target.host in _LOCAL_NAMES or target.host.endswith(".localhost"):
        if not allowed.allows_address(ipaddress.IPv4Address("127.0.0.1")):
            raise Refused(f"refused: {target.host} is this server itself")


def check_url(url: str, allowed: AllowList | None = None) -> Target:
    """What can be refused without a DNS lookup (at create/update time): bad scheme,
    credentials, address literals and localhost names. A name is checked again, resolved, at
    every request."""
    target = parse(url)
    _refuse_without_lookup(target, allow_list() if allowed is None else allowed)
    return target


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def checked_addresses(target: Target, resolver: Resolver | None = None,
                      allowed: AllowList | None = None) -> list[IPAddress]:
    """The addresses a connection may go to: resolved once, every answer checked (one that is
    not public refuses the name)."""
    allowed = allow_list() if allowed is None else allowed
    _refuse_without_lookup(target, allowed)
    if target.address is not None:
        return [target.address]
    try:
        answers = list((resolver or system_resolver)(target.host, target.port))
    except (OSError, UnicodeError) as exc:
        raise EgressError("DNS lookup failed") from exc
    addresses = [ipaddress.ip_address(a) for a in answers]
    if not addresses:
        raise EgressError("DNS lookup failed")
    if not allowed.allows_name(target.host):
        for ip in addresses:
            if why_not_public(ip) and not allowed.allows_address(ip):
                raise Refused(RESOLVES_INTERNAL)
    return list(dict.fromkeys(addresses))


class _DeadlineStream(httpcore.NetworkStream):
    """Caps every read and write at what is left of one total deadline (a receiver that drips
    bytes cannot hold a worker past it)."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self.inner, self.deadline = inner, deadline

    def _left(self, timeout: float | None) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, self._left(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        tls = self.inner.start_tls(ssl_context, server_hostname, self._left(timeout))
        return _DeadlineStream(tls, self.deadline)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _PinnedBackend(httpcore.SyncBackend):
    """Connects only to the checked addresses (in resolver order, the next one when one cannot
    be reached), whatever host name the request carries."""

    def __init__(self, addresses: list[IPAddress], deadline: float) -> None:
        self.addresses, self.deadline = addresses, deadline
        self.connected: IPAddress | None = None

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in self.addresses:
            left = self.deadline - time.monotonic()
            if left <= 0:
                break
            try:
                stream = super().connect_tcp(str(address), port,
                                             left if timeout is None else min(timeout, left),
                                             local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            self.connected = address
            return _DeadlineStream(stream, self.deadline)
        raise failure or httpcore.ConnectTimeout("deadline passed")


def _reason(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, httpcore.TimeoutException) or isinstance(cause, TimeoutError):
        return "timeout"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, ssl.SSLError) or "SSL" in type(cause).__name__:
        return "TLS error"
    if isinstance(exc, httpcore.ConnectError):
        return "connection failed"
    return "connection error"


def post(url: str, body: bytes, headers: Sequence[tuple[str, str]], *, timeout_s: float,
         max_read: int = 64 * 1024, resolver: Resolver | None = None) -> Answer:
    """POST ``body`` to ``url`` through the guard. Raises Refused (nothing was sent) or
    EgressError (no answer); any HTTP answer, 3xx included, is returned, never followed."""
    deadline = time.monotonic() + timeout_s
    target = parse(url)
    addresses = checked_addresses(target, resolver)
    sent = [("Host", target.host_header), *headers, ("Content-Length", str(len(body)))]
    ctx = ssl.create_default_context(cafile=certifi.where()) if target.scheme == "https" else None
    backend = _PinnedBackend(addresses, deadline)
    request_url = httpcore.URL(scheme=target.scheme, host=target.host, port=target.port,
                               target=target.path)
    timeout = {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}
    try:
        with httpcore.ConnectionPool(ssl_context=ctx, network_backend=backend, retries=0,
                                     max_connections=1) as pool, \
                pool.stream("POST", request_url, headers=sent, content=body,
                            extensions={"timeout": timeout}) as response:
            read = 0
            for chunk in response.iter_stream():  # drained a little, then dropped unread
                read += len(chunk)
                if read >= max_read:
                    break
            return Answer(response.status, str(backend.connected))
    except httpcore.TimeoutException as exc:
        raise EgressError("timeout") from exc
    except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
        raise EgressError(_reason(exc)) from exc
