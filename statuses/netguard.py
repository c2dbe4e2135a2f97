"""Outgoing connections only go to public addresses (SSRF guard, issue #10 item 1).

Everything Tickmark connects to on a tenant's behalf — integrator webhook URLs, an inbox's
``api_base_url``, the api channel's ``webhook_url``, an email inbox's ``smtp_host`` — is a URL
someone typed. Without this guard they could point Tickmark at its own database, Redis or the
cloud metadata service and read the answer back.

Two checks, both here:

- **When saving** (``check_url`` / ``check_host``): an address literal that is not public is
  refused, and so is a name that resolves to one (``localhost``, ``*.localhost``, a name whose DNS
  answers 127.0.0.1). A name that does not resolve yet is accepted: the connect-time check still
  applies.
- **When connecting** (``http_client`` / ``create_connection``): the name is resolved once, every
  address it resolves to is checked, and the connection goes to the checked address itself —
  so a DNS answer that changes between the save and the connection (DNS rebinding) is caught.
  TLS still verifies the certificate against the name.

A refused address fails exactly like a refused connection (``connection failed``), so the
guard cannot be used to tell open internal ports from closed ones.

``TICKMARK_ALLOW_PRIVATE_URLS`` (off by default; on in ``make run`` and in the tests, whose
simulator and fakes listen on 127.0.0.1) switches both checks off.
"""

from __future__ import annotations

import ipaddress
import re
import smtplib
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What a caller ever learns about a connection that did not happen.
CONNECTION_FAILED = "connection failed"

_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class BlockedAddress(ValueError):
    """The host is (or resolves to) an address Tickmark must not connect to."""


class Unresolvable(BlockedAddress):
    """The host name does not resolve (nothing to connect to)."""


def private_urls_allowed() -> bool:
    return bool(getattr(settings, "TICKMARK_ALLOW_PRIVATE_URLS", False))


def is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address; IPv4 embedded in IPv6 is judged as IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return is_public(embedded)
        if ip.teredo is not None:
            return False
    return ip.is_global and not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (numeric forms such as ``2130706433`` included).

    The one resolver both checks use; tests patch it to map a name to an address.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def public_addresses(host: str, port: int) -> list[str]:
    """Resolve ``host`` and return its addresses, or raise ``BlockedAddress`` if any is not
    public (a name answering one public and one private address is refused as a whole)."""
    name = host.strip("[]").rstrip(".").lower()
    if not name:
        raise BlockedAddress("no host")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        raise BlockedAddress(f"{host} is a local name")
    literal = _literal(name)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve(name, port)
        except (OSError, UnicodeError) as exc:
            raise Unresolvable(f"{host} does not resolve") from exc
    for address in addresses:
        ip = _literal(address)
        if ip is None or not is_public(ip):
            raise BlockedAddress(f"{host} is not a public address")
    if not addresses:
        raise Unresolvable(f"{host} does not resolve")
    return addresses


_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$"
)


def is_host(value: str) -> bool:
    """A bare host name or IP address (no scheme, port, path or spaces)."""
    return _literal(value) is not None or bool(_HOST_NAME.match(value))


# --- when saving ------------------------------------------------------------------------------


def check_host(host: str, port: int = 0) -> None:
    """Raise ``BlockedAddress`` with a user-facing reason if ``host`` must not be used."""
    if private_urls_allowed():
        return
    name = host.strip("[]").rstrip(".").lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        raise BlockedAddress("Local host names are not allowed.")
    literal = _literal(name)
    if literal is not None:
        if not is_public(literal):
            raise BlockedAddress(
                "Private, loopback, link-local and reserved addresses are not allowed."
            )
        return
    try:
        public_addresses(name, port)
    except Unresolvable:
        return  # maybe not in DNS yet; the connect-time check still applies
    except BlockedAddress as exc:
        raise BlockedAddress(
            "This host resolves to a private, loopback or reserved address."
        ) from exc


def check_url(url: str) -> None:
    """``check_host`` for the host of an http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedAddress("Not a valid URL.") from exc
    if parts.username or parts.password:
        raise BlockedAddress("Credentials in the URL are not allowed.")
    check_host(parts.hostname or "", port)


# --- when connecting: HTTP -----------------------------------------------------------------------


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore network backend that connects only to checked public addresses."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if private_urls_allowed():
            return self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = public_addresses(host, port)
        except BlockedAddress as exc:
            raise httpcore.ConnectError(CONNECTION_FAILED) from exc
        last: Exception | None = None
        for address in addresses:
            try:
                # An address literal: httpcore's backend skips DNS, so what was checked is what
                # is connected to. TLS (started later) still uses ``host`` for SNI and checks.
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError(CONNECTION_FAILED)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def transport(**kwargs: Any) -> httpx.HTTPTransport:
    """An ``httpx.HTTPTransport`` whose connections go through ``GuardedBackend``."""
    guarded = httpx.HTTPTransport(**kwargs)
    # httpx does not expose the network backend; its pool takes one, so swap it in.
    guarded._pool._network_backend = GuardedBackend()
    return guarded


def http_client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` for tenant-given URLs: guarded, no redirects, no proxy from the
    environment (a proxy would connect on our behalf, past the guard)."""
    return httpx.Client(transport=transport(), follow_redirects=False, trust_env=False, **kwargs)


# --- when connecting: SMTP -----------------------------------------------------------------------


def create_connection(
    host: str, port: int, timeout: float | None, source_address: Any = None
) -> socket.socket:
    """``socket.create_connection`` to a checked public address of ``host``."""
    if private_urls_allowed():
        return socket.create_connection((host, port), timeout, source_address)
    try:
        addresses = public_addresses(host, port)
    except BlockedAddress as exc:
        raise ConnectionRefusedError(CONNECTION_FAILED) from exc
    last: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout, source_address)
        except OSError as exc:
            last = exc
    assert last is not None
    raise last


class SMTP(smtplib.SMTP):
    """``smtplib.SMTP`` that connects only to checked public addresses."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return create_connection(host, port, timeout, self.source_address)


class SMTP_SSL(smtplib.SMTP_SSL):
    """``smtplib.SMTP_SSL`` that connects only to checked public addresses."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = create_connection(host, port, timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self._host)
