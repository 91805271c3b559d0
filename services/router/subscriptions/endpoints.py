"""Where a webhook may go: the checks a subscription's callback URL passes at registration
and again before every POST (server-side request forgery, DNS rebinding).

A callback is refused when

- its scheme is not https outside the sandbox (the sandbox's subscriber listens on http);
- its host is not on ``ROUTER_SUBSCRIPTION_ALLOWED_HOSTS`` (names or ``*.suffix``
  patterns). Outside the sandbox an empty list allows no host at all: fail closed;
- any address its host resolves to is not a public unicast address: loopback, link-local,
  private (RFC 1918, ULA ``fc00::/7``), CGNAT ``100.64.0.0/10``, multicast, unspecified,
  reserved, documentation ranges, and the IPv4 address inside an IPv6 one (``::ffff:a.b.c.d``,
  6to4, Teredo, NAT64) checked as that IPv4 address. ``ROUTER_SUBSCRIPTION_ALLOW_PRIVATE_
  ADDRESSES`` (the sandbox only; refused elsewhere) switches this check off.

Every address a name resolves to is checked, not just the first: a name that answers with a
public and a private address is refused. At delivery the name is resolved again, checked
again, and the POST connects to the address that passed (:class:`Vetted.address`), so a
name re-pointed at a private address after registration (DNS rebinding) gets nothing.

Resolution is behind :class:`Resolver`; :class:`SystemResolver` asks the operating system,
:class:`FakeResolver` answers from a table (tests, the attack probe).

Exceptions::

    EndpointRefused (ValueError)        the callback may not be called; never retried
    ├── InsecureScheme                  http outside the sandbox
    ├── HostNotAllowed                  not on the allowlist
    └── ForbiddenAddress                resolves to a non-public address
    Unresolvable (Exception)            its name does not resolve now: may come back

No message holds the URL or an address: refusals reach API answers, logs and alerts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Named ranges first (the refusal says which); anything else not global is refused as well.
_NAMED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unspecified", ("0.0.0.0/8", "::/128")),
    ("loopback", ("127.0.0.0/8", "::1/128")),
    ("link-local", ("169.254.0.0/16", "fe80::/10")),
    ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")),
    ("CGNAT", ("100.64.0.0/10",)),
    ("multicast", ("224.0.0.0/4", "ff00::/8")),
    ("reserved", ("240.0.0.0/4", "255.255.255.255/32")),
)
_NETWORKS = tuple((name, ipaddress.ip_network(net)) for name, nets in _NAMED for net in nets)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EndpointRefused(ValueError):
    """A callback the router will not call; ``reason`` names the rule, never the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InsecureScheme(EndpointRefused):
    pass


class HostNotAllowed(EndpointRefused):
    pass


class ForbiddenAddress(EndpointRefused):
    pass


class Unresolvable(Exception):
    """The host name does not resolve (now): at delivery a transient failure."""

    def __init__(self, reason: str = "its host name does not resolve") -> None:
        super().__init__(reason)
        self.reason = reason


def forbidden_range(address: IPAddress) -> str | None:
    """The kind of non-public address ``address`` is, or None for a public one."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        found = forbidden_range(embedded)
        return None if found is None else f"{found} (inside IPv6)"
    for name, network in _NETWORKS:
        if address.version == network.version and address in network:
            return name
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def host_matches(host: str, pattern: str) -> bool:
    """``a.example.se`` matches ``a.example.se`` and ``*.example.se`` (any depth), not
    ``example.se`` itself; case and a trailing dot do not count."""
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def check_pattern(pattern: str) -> str:
    """A valid allowlist entry, normalised; ValueError names what is wrong (it is config,
    not a secret, but the message still does not repeat it)."""
    value = pattern.strip().lower().rstrip(".")
    name = value.removeprefix("*.")
    if not name or "*" in name or "/" in name or ":" in name or "." not in name:
        raise ValueError("a host name (a.example.se) or a *.suffix pattern (*.example.se)")
    return value


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """What a callback must be. Built by ``RouterSettings.endpoint_policy()``."""

    require_https: bool = True
    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()
    empty_allows_all: bool = False  # the sandbox: no allowlist means any host

    def check_url(self, url: str) -> httpx.URL:
        """The checks that need no DNS: scheme, allowlist, an address given literally."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise EndpointRefused("not a valid URL") from None
        if parsed.scheme not in ("https", "http") or not parsed.host:
            raise EndpointRefused("an http(s) URL with a host is required")
        if self.require_https and parsed.scheme != "https":
            raise InsecureScheme("https only outside the sandbox")
        if not self.host_allowed(parsed.host):
            raise HostNotAllowed(
                "its host is not on ROUTER_SUBSCRIPTION_ALLOWED_HOSTS"
                if self.allowed_hosts
                else "ROUTER_SUBSCRIPTION_ALLOWED_HOSTS is empty: no host is allowed"
            )
        literal = _literal(parsed.host)
        if literal is not None:
            self.check_address(literal)
        return parsed

    def host_allowed(self, host: str) -> bool:
        if not self.allowed_hosts:
            return self.empty_allows_all
        return any(host_matches(host, p) for p in self.allowed_hosts)

    def check_address(self, address: IPAddress) -> None:
        if self.allow_private:
            return
        kind = forbidden_range(address)
        if kind is not None:
            raise ForbiddenAddress(f"its host resolves to a forbidden address: {kind}")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class Resolver(Protocol):
    """Host name → every address it has now (strings), or :class:`Unresolvable`."""

    async def resolve(self, host: str, port: int) -> Sequence[str]: ...


class SystemResolver:
    """The operating system's resolver (``getaddrinfo``), with a time limit."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self._timeout_s = timeout_s

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self._timeout_s
            )
        except (OSError, TimeoutError):
            raise Unresolvable() from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass
class FakeResolver:
    """Answers from ``answers`` (host → addresses); a test changes them between calls to
    play a rebinding. ``asked`` lists every host asked for, in order."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, answers: Mapping[str, Iterable[str]]) -> FakeResolver:
        return cls({host: list(found) for host, found in answers.items()})

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        found = self.answers.get(host.lower())
        if not found:
            raise Unresolvable()
        return list(found)


@dataclass(frozen=True, slots=True)
class Vetted:
    """A callback that passed: connect to ``address`` (None: as the URL says, when the
    address check is off), keeping the URL's host for the Host header and TLS."""

    url: str
    address: str | None


async def vet(url: str, policy: EndpointPolicy, resolver: Resolver) -> Vetted:
    """Every check, DNS included; raises :class:`EndpointRefused` or :class:`Unresolvable`."""
    parsed = policy.check_url(url)
    if policy.allow_private:
        return Vetted(url, None)
    literal = _literal(parsed.host)
    if literal is not None:
        return Vetted(url, str(literal))
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    found = await resolver.resolve(parsed.host, port)
    if not found:
        raise Unresolvable()
    addresses = []
    for text in found:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone
        except ValueError:
            raise Unresolvable("its host name resolves to something not an address") from None
        policy.check_address(address)  # every one: a mixed answer is refused
        addresses.append(address)
    return Vetted(url, str(addresses[0]))
