"""The egress guard on its own: every spelling of an internal address, pinned connections (no
DNS rebinding), no redirects, one deadline, a bounded read, SNI by host name.

Listeners are real sockets; only the DNS answers are stubbed (a resolver is not one of our
components, and a rebinding DNS server is what the stub plays).
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.core import egress
from app.core.settings import get_settings
from tests.security.egress_listeners import http_answer, listening

HEADERS = [("Content-Type", "application/json")]

INTERNAL = [
    "http://127.0.0.1/", "http://localhost/", "http://[::1]/", "http://0.0.0.0/",
    "http://2130706433/", "http://0x7f000001/", "http://127.1/", "http://[::ffff:127.0.0.1]/",
    "http://0177.0.0.1/", "http://0x7f.1/", "http://0/", "http://169.254.169.254/latest/",
    "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/", "http://100.64.0.1/",
    "http://[fe80::1]/", "http://[fe80::1%25eth0]/", "http://localhost./", "http://LocalHost/",
    "http://api.localhost/", "http://[::]/", "http://255.255.255.255/", "http://224.0.0.1/",
    "http://[ff02::1]/", "http://192.0.2.10/", "http://198.51.100.1/", "http://203.0.113.9/",
    "http://198.18.0.1/", "http://240.0.0.1/", "http://[fc00::1]/", "http://[fd12:3456::1]/",
    "http://[fec0::1]/", "http://[2001:db8::1]/", "http://[::127.0.0.1]/",
    "http://[2002:7f00:1::]/", "http://[2002:a9fe:a9fe::]/", "http://[64:ff9b::7f00:1]/",
    "http://[::ffff:169.254.169.254]/", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "https://127.0.0.1:6379/", "http://127.0.0.1:5432/",
]
PUBLIC = ["https://hooks.example.com/x", "http://8.8.8.8/", "https://[2606:4700::1111]/",
          "http://[::ffff:8.8.8.8]/", "http://bücher.example/a?b=c", "http://1.1.1.1:8443/"]
MALFORMED = ["ftp://example.com/", "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO",
             "http://user:pw@example.com/", "http://@example.com/", "http://",
             "http://example.com:99999/", "javascript:alert(1)"]


@pytest.fixture()
def allow(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Sets ATELIER_EGRESS_ALLOW for one test (empty until a test calls it)."""
    def set_allow(value: str) -> None:
        monkeypatch.setenv("ATELIER_EGRESS_ALLOW", value)
        get_settings.cache_clear()

    set_allow("")
    yield set_allow
    monkeypatch.delenv("ATELIER_EGRESS_ALLOW")
    get_settings.cache_clear()


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(egress.Refused) as refused:
        egress.check_url(url, egress.AllowList())
    assert refused.value.reason.startswith("refused: ")


@pytest.mark.parametrize("url", PUBLIC)
def test_public_urls_pass(url: str) -> None:
    target = egress.check_url(url, egress.AllowList())
    assert target.scheme in ("http", "https") and target.host


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(egress.Refused):
        egress.check_url(url, egress.AllowList())


def test_legacy_spellings_normalise_to_the_address() -> None:
    for spelling in ("2130706433", "0x7f000001", "127.1", "0177.0.0.1", "0x7f.0.0.1"):
        assert str(egress.literal_address(spelling)) == "127.0.0.1", spelling
    assert egress.literal_address("hooks.example.com") is None
    assert egress.literal_address("deadbeef.example") is None


def test_allow_list_opens_only_what_it_names() -> None:
    allowed = egress.AllowList.parse(" 127.0.0.0/8 , [::1], hooks.internal, *.svc.test ")
    for url in ("http://127.0.0.1:9/", "http://2130706433/", "http://[::ffff:127.0.0.1]/",
                "http://[::1]/", "http://localhost/", "http://hooks.internal/",
                "http://a.b.svc.test/"):
        egress.check_url(url, allowed)
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://[fe80::1]/"):
        with pytest.raises(egress.Refused):
            egress.check_url(url, allowed)

    def internal(host: str, port: int) -> list[str]:
        return ["10.0.0.7"]

    for host in ("hooks.internal", "x.svc.test"):  # a listed name may resolve anywhere
        target = egress.parse(f"http://{host}/")
        assert [str(a) for a in egress.checked_addresses(target, internal, allowed)] == [
            "10.0.0.7"]
    for host in ("svc.test.evil", "hooks.internal.evil", "svc.test"):
        with pytest.raises(egress.Refused):
            egress.checked_addresses(egress.parse(f"http://{host}/"), internal, allowed)


def test_literal_private_address_is_refused_before_connecting(allow) -> None:  # type: ignore[no-untyped-def]
    with listening("127.0.0.1") as target:
        for url in (target.url(), f"http://2130706433:{target.port}/",
                    f"http://127.1:{target.port}/", f"http://[::ffff:127.0.0.1]:{target.port}/"):
            with pytest.raises(egress.Refused):
                egress.post(url, b"{}", HEADERS, timeout_s=2)
    assert target.accepted == 0


def test_name_resolving_to_loopback_is_refused_before_connecting(allow) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    with listening("127.0.0.1") as target:
        with pytest.raises(egress.Refused) as refused:
            egress.post(target.url(host="hooks.example.com"), b"{}", HEADERS, timeout_s=2,
                        resolver=resolver)
    assert refused.value.reason == "refused: resolves to a non-public address"
    assert calls == ["hooks.example.com"] and target.accepted == 0


def _pair_on_one_port() -> tuple[int, socket.socket]:
    """A port free on both 127.0.0.1 and 127.0.0.2 (reserved on .2 until the caller binds)."""
    for _ in range(20):
        probe = socket.socket()
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
        other = socket.socket()
        try:
            other.bind(("127.0.0.1", port))
        except OSError:
            probe.close()
            continue
        other.close()
        return port, probe
    raise RuntimeError("no port free on both loopback addresses")


def test_dns_rebinding_connection_goes_to_the_checked_address(allow) -> None:  # type: ignore[no-untyped-def]
    """The resolver answers an allowed address first and an internal one after: the request
    must go to the first (the checked one) and never look the name up again."""
    allow("127.0.0.2/32")  # plays the public address here
    answers = iter([["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    port, probe = _pair_on_one_port()
    probe.close()
    with listening("127.0.0.2", port=port) as checked, \
            listening("127.0.0.1", port=port) as internal:
        url = f"http://rebind.example:{port}/hook?x=1"
        answer = egress.post(url, b'{"a":1}', HEADERS, timeout_s=5, resolver=rebinding)
        assert answer.status == 200 and answer.address == "127.0.0.2"
        assert calls == ["rebind.example"]
        [request] = checked.requests
        assert request.startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
        assert f"host: rebind.example:{port}\r\n".encode() in request.lower()
        assert request.endswith(b'{"a":1}')
        with pytest.raises(egress.Refused):  # the next request checks again
            egress.post(url, b"{}", HEADERS, timeout_s=5, resolver=rebinding)
    assert internal.accepted == 0 and checked.accepted == 1


def test_any_internal_answer_refuses_the_name(allow) -> None:  # type: ignore[no-untyped-def]
    allow("127.0.0.2/32")
    with listening("127.0.0.2") as checked:
        with pytest.raises(egress.Refused):
            egress.post(checked.url(host="mixed.example"), b"{}", HEADERS, timeout_s=2,
                        resolver=lambda host, port: ["127.0.0.2", "10.1.2.3"])
    assert checked.accepted == 0


def test_an_unreachable_checked_address_falls_back_to_the_next_checked_one(allow) -> None:  # type: ignore[no-untyped-def]
    allow("127.0.0.0/29")
    with listening("127.0.0.2") as up:
        with socket.socket() as s:
            s.bind(("127.0.0.3", up.port))  # free on .3 while we hold it; closed after
        answer = egress.post(up.url(host="dual.example"), b"{}", HEADERS, timeout_s=5,
                             resolver=lambda host, port: ["127.0.0.3", "127.0.0.2"])
    assert answer.address == "127.0.0.2" and up.accepted == 1


def test_redirects_are_not_followed(allow) -> None:  # type: ignore[no-untyped-def]
    allow("127.0.0.0/8")
    with listening("127.0.0.2") as second:
        moved = http_answer(302, headers=f"Location: {second.url()}\r\n")
        with listening("127.0.0.1", answer=moved) as first:
            answer = egress.post(first.url(), b"{}", HEADERS, timeout_s=5)
    assert answer.status == 302 and first.accepted == 1 and second.accepted == 0


def test_one_deadline_bounds_a_dripping_answer(allow) -> None:  # type: ignore[no-untyped-def]
    allow("127.0.0.1/32")
    with listening("127.0.0.1", mode="drip", answer=http_answer(200, b"x" * 200)) as slow:
        started = time.monotonic()
        with pytest.raises(egress.EgressError) as failed:
            egress.post(slow.url(), b"{}", HEADERS, timeout_s=1)
        took = time.monotonic() - started
    assert failed.value.reason == "timeout" and took < 2.5, took


def test_an_endless_body_is_not_read_to_the_end(allow) -> None:  # type: ignore[no-untyped-def]
    allow("127.0.0.1/32")
    with listening("127.0.0.1", mode="endless") as endless:
        started = time.monotonic()
        answer = egress.post(endless.url(), b"{}", HEADERS, timeout_s=10, max_read=1 << 20)
        took = time.monotonic() - started
    assert answer.status == 200 and took < 5, took


def test_closed_port_is_a_short_reason(allow) -> None:  # type: ignore[no-untyped-def]
    allow("127.0.0.1/32")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(egress.EgressError) as failed:
        egress.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS, timeout_s=2)
    assert failed.value.reason == "connection refused"


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_uses_the_host_name_for_sni_and_verification(allow, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Pinned to an address, TLS still names the host (SNI) and checks the certificate against
    it: an untrusted certificate fails the request."""
    allow("127.0.0.2/32")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*_self_signed(tmp_path, "hooks.example"))
    seen: list[str | None] = []
    ctx.sni_callback = lambda sock, name, c: seen.append(name)  # type: ignore[assignment]
    server = socket.socket()
    server.bind(("127.0.0.2", 0))
    server.listen(4)
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        try:
            ctx.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(egress.EgressError) as failed:
            egress.post(f"https://hooks.example:{port}/", b"{}", HEADERS, timeout_s=5,
                        resolver=lambda host, p: ["127.0.0.2"])
    finally:
        thread.join(5)
        server.close()
    assert seen == ["hooks.example"]
    assert failed.value.reason == "TLS error"
