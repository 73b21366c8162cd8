"""Where alert notifications may be sent: the outbound address policy.

A tenant key stores webhook and Slack URLs, and the server POSTs to them; without a
rule a tenant could make the server reach its own loopback services, the private
network behind it or the cloud metadata service (169.254.169.254).  So only
**public unicast addresses** are allowed by default.  Refused:

* loopback (127.0.0.0/8, ::1), private (10/8, 172.16/12, 192.168/16, fc00::/7),
  link-local (169.254/16, fe80::/10), shared address space (100.64/10), "this
  network" (0/8), documentation, benchmarking and IETF protocol ranges, reserved
  space (240/4, IPv6 outside 2000::/3), site-local fec0::/10, Teredo, discard;
* IPv6 forms that embed an IPv4 address — IPv4-mapped (``::ffff:127.0.0.1``), 6to4
  (2002::/16), NAT64 (64:ff9b::/96) — are judged by the IPv4 address inside;
* **never**, whatever the allow-list says: the unspecified address (0.0.0.0, ::, which
  connects to the local host), multicast and broadcast.

An operator may allow more on purpose (:class:`OutboundPolicy`: networks such as
``10.1.2.3/32``, or host names whose addresses are then not checked).  Every address a
host name resolves to must be allowed; the sender connects only to an address it
checked (:mod:`jobbudget.notify.transport`).  :meth:`OutboundPolicy.target_refusal`
is the same rule applied to a URL's literal address when a channel is stored:
``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` are read as the system resolver
reads them (127.0.0.1), and ``localhost`` names are loopback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import urlsplit

from .budget import NotificationChannel, redact_target
from .errors import ValidationError

__all__ = [
    "IPAddress",
    "IPNetwork",
    "OutboundPolicy",
    "check_channel_target",
    "classify",
    "literal_address",
    "normalize_host",
    "parse_host",
    "parse_network",
    "target_host",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


def _table(*rows: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), why) for net, why in rows)


#: IPv4 special-purpose ranges (IANA registry, RFC 6890 and later), most specific first.
_V4 = _table(
    ("127.0.0.0/8", "a loopback address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("169.254.0.0/16", "a link-local address (where cloud metadata services answer)"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("0.0.0.0/8", "a 'this network' address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("240.0.0.0/4", "a reserved address"),
)
#: IPv6 ranges refused outright (those embedding IPv4 are handled before these).
_V6 = _table(
    ("::1/128", "a loopback address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("fc00::/7", "a private (unique local) address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("2001::/32", "a Teredo tunnel address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("2001::/23", "an IETF protocol address"),
    ("100::/64", "a discard address"),
    ("5f00::/16", "a segment-routing address"),
)
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")
_BROADCAST = IPv4Address("255.255.255.255")
#: Names that are loopback by definition (RFC 6761), whatever DNS says.
_LOOPBACK_NAMES = ("localhost",)


def _never(address: IPAddress) -> str | None:
    """Addresses no allow-list can open: they are not one receiver's address."""
    if address.is_unspecified:
        return "the unspecified address (it reaches this host)"
    if address.is_multicast:
        return "a multicast address"
    if address == _BROADCAST:
        return "the broadcast address"
    return None


def _embedded(address: IPv6Address) -> tuple[IPv4Address, str] | None:
    """The IPv4 address inside an IPv4-mapped, NAT64 or 6to4 address, and the form's name."""
    if address in _MAPPED:
        mapped = address.ipv4_mapped
        assert mapped is not None
        return mapped, "IPv4-mapped"
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address in _SIXTOFOUR:
        inner = address.sixtofour
        assert inner is not None
        return inner, "6to4"
    return None


def classify(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address (``"a loopback address"``), or
    ``None`` when it is one.  IPv6 forms embedding IPv4 are judged by the IPv4 address."""
    never = _never(address)
    if never is not None:
        return never
    if isinstance(address, IPv6Address):
        inner = _embedded(address)
        if inner is not None:
            why = classify(inner[0])
            return None if why is None else f"the {inner[1]} form of {inner[0]}, {why}"
        table = _V6
    else:
        table = _V4
    for network, why in table:
        if address in network:
            return why
    if isinstance(address, IPv6Address) and address not in _GLOBAL_UNICAST:
        return "a reserved address"
    if not address.is_global:  # the standard library's view, as a second opinion
        return "not a global address"
    return None


def normalize_host(host: str) -> str:
    """A host name as compared and resolved: lower case, IDNA (so ``127。0。0。1`` is
    ``127.0.0.1``), without the brackets of an IPv6 literal or trailing dots."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text.isascii():
        with contextlib.suppress(UnicodeError):  # not a valid name: the HTTP client refuses it
            text = text.encode("idna").decode("ascii")
    return text.rstrip(".") if ":" not in text else text


def literal_address(host: str) -> IPAddress | None:
    """The address a numeric host means, read as the system resolver reads it (so
    ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` are all 127.0.0.1); ``None``
    for a name.  Never looks anything up."""
    text = normalize_host(host)
    if ":" in text:
        try:
            return IPv6Address(text.split("%", 1)[0])
        except ValueError:
            return None
    if not text:
        return None
    try:
        found = socket.getaddrinfo(text, None, family=socket.AF_INET, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    return IPv4Address(found[0][4][0]) if found else None


def target_host(target: str) -> str | None:
    """The normalized host of a URL, or ``None`` when it has none."""
    try:
        host = urlsplit(target).hostname
    except ValueError:
        return None
    return normalize_host(host) if host else None


def parse_network(text: str) -> IPNetwork:
    """``10.0.0.0/8``, ``fd00::/8``, or one address (``10.1.2.3`` is ``10.1.2.3/32``);
    raises :class:`ValueError` in words when it is not one."""
    value = text.strip()
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            suggestion = ipaddress.ip_network(value, strict=False)
            raise ValueError(f"{value} has bits set after the prefix; write {suggestion}") from None
        raise ValueError(f"{value} is not an address or network such as 10.1.2.0/24 or fd00::/8") from None


def parse_host(text: str) -> str:
    """A host name for the allow-list (``alerts.internal``); addresses belong in the
    network list.  Raises :class:`ValueError` in words."""
    host = normalize_host(text)
    labels = host.split(".")
    if literal_address(host) is not None:
        raise ValueError(f"{text.strip()} is an address: list it under notification_allowed_networks")
    if not host or len(host) > 253 or not all(_label_ok(label) for label in labels):
        raise ValueError(f"{text.strip()} is not a host name such as alerts.internal.example")
    return host


def _label_ok(label: str) -> bool:
    return 0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label) and label.isascii()


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Which addresses notification requests may connect to: public unicast addresses,
    plus the operator's ``allowed_networks`` and ``allowed_hosts`` (host names whose
    addresses are not checked, except for the never-allowed ones)."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, networks: Iterable[str] = (), hosts: Iterable[str] = ()) -> OutboundPolicy:
        """From the configuration's texts (``notification_allowed_networks`` / ``_hosts``)."""
        return cls(tuple(parse_network(n) for n in networks), frozenset(parse_host(h) for h in hosts))

    def host_allowed(self, host: str) -> bool:
        return normalize_host(host) in self.allowed_hosts

    def network_allowed(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)  # the same destination, as an operator writes it
        return any(a in net for a in candidates for net in self.allowed_networks if net.version == a.version)

    def refusal(self, address: IPAddress, *, host: str | None = None) -> str | None:
        """Why a connection to ``address`` (resolved from ``host``) is refused, in
        words (``"127.0.0.1 is a loopback address"``), or ``None`` when allowed."""
        shown = _shown(address, host)
        never = _never(address)
        if never is None and isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            never = _never(address.ipv4_mapped)
        if never is not None:
            return f"{shown} is {never}"
        if (host is not None and self.host_allowed(host)) or self.network_allowed(address):
            return None
        why = classify(address)
        return None if why is None else f"{shown} is {why}"

    def target_refusal(self, target: str) -> str | None:
        """The same rule for a URL when it is stored: refused when its host is a literal
        address (in any spelling the resolver accepts) or a ``localhost`` name that the
        policy does not allow.  Other names are checked each time they are resolved."""
        host = target_host(target)
        if host is None:
            return None
        if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
            loopback = IPv4Address("127.0.0.1")
            if self.host_allowed(host) or self.network_allowed(loopback):
                return None
            return f"{host} is a loopback name"
        address = literal_address(host)
        return None if address is None else self.refusal(address, host=host)


def check_channel_target(policy: OutboundPolicy, channel: NotificationChannel, field: str) -> None:
    """Refuse (:class:`ValidationError` naming ``field``) a webhook or Slack channel whose
    target is a literal address, or ``localhost`` name, that ``policy`` refuses."""
    reason = None if channel.type == "email" else policy.target_refusal(channel.target)
    if reason is not None:
        raise ValidationError(
            field,
            redact_target(channel.type, channel.target),
            f"{reason}; alerts go to public addresses only, unless the operator allows this one "
            "(notification_allowed_networks, notification_allowed_hosts)",
        )


def _shown(address: IPAddress, host: str | None) -> str:
    if host is None:
        return str(address)
    name = normalize_host(host)
    literal = literal_address(name)
    if literal is not None:
        return str(address) if name == str(address) else f"{name} ({address})"
    return f"{name} resolves to {address}, which"
