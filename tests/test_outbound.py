"""The outbound policy (``jobbudget.domain.outbound``): which addresses webhook and
Slack requests may reach, the operator's allow-list, the odd spellings of loopback a
URL can hold, and the checked transport (``jobbudget.notify.transport``) against real
receivers: one resolution per connection, every address checked, the connection made
to the checked address, ``Host``, SNI and certificate verification for the host name."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from jobbudget.config import Config
from jobbudget.domain.alerts import AlertEvent
from jobbudget.domain.budget import NotificationChannel
from jobbudget.domain.errors import ValidationError
from jobbudget.domain.outbound import OutboundPolicy, classify, literal_address, parse_host, parse_network
from jobbudget.notify import DeliveryError, TargetNotAllowedError, sender_for
from jobbudget.notify.slack import SlackSender
from jobbudget.notify.webhook import WebhookSender
from receivers import LOCAL, Receiver, Reply, http_receivers, loopback_names, self_signed

DEFAULT = OutboundPolicy()

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "10.0.0.1": "private",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "100.64.0.1": "shared",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "this network",
    "192.0.0.8": "IETF",
    "192.0.2.1": "documentation",
    "198.51.100.7": "documentation",
    "203.0.113.9": "documentation",
    "198.18.0.1": "benchmarking",
    "192.88.99.1": "6to4 relay",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "broadcast",
    "::": "unspecified",
    "::1": "loopback",
    "fe80::1": "link-local",
    "fc00::1": "unique local",
    "fd12:3456::1": "unique local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "::ffff:127.0.0.1": "IPv4-mapped form of 127.0.0.1, a loopback",
    "::ffff:10.0.0.1": "IPv4-mapped form of 10.0.0.1, a private",
    "::ffff:169.254.169.254": "IPv4-mapped form of 169.254.169.254, a link-local",
    "::ffff:0.0.0.0": "unspecified",
    "64:ff9b::7f00:1": "NAT64 form of 127.0.0.1",
    "64:ff9b::a9fe:a9fe": "NAT64 form of 169.254.169.254",
    "64:ff9b:1::1": "local-use NAT64",
    "2002:7f00:1::1": "6to4 form of 127.0.0.1",
    "2002:c0a8:101::1": "6to4 form of 192.168.1.1",
    "2001::1": "Teredo",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation",
    "100::1": "discard",
    "::7f00:1": "reserved",  # IPv4-compatible (deprecated)
    "4000::1": "reserved",
}
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "172.15.255.255",
    "172.32.0.1",
    "100.128.0.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("text", "words"), sorted(REFUSED.items()))
def test_non_public_addresses_are_refused_by_default(text: str, words: str) -> None:
    address = ipaddress.ip_address(text)
    why = DEFAULT.refusal(address)
    assert why is not None and words in why, why
    assert why.startswith(str(address))
    assert classify(address) is not None


@pytest.mark.parametrize("text", ALLOWED)
def test_public_addresses_are_allowed(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert classify(address) is None
    assert DEFAULT.refusal(address) is None


# -- how a URL can spell loopback ----------------------------------------------------------
ODD_LOOPBACK = {
    "http://127.0.0.1:8080/hook": "127.0.0.1",
    "http://2130706433/hook": "127.0.0.1",  # one 32-bit number
    "http://0x7f.1/hook": "127.0.0.1",  # hexadecimal, two parts
    "http://0x7f000001/hook": "127.0.0.1",
    "http://0177.0.0.1/hook": "127.0.0.1",  # octal
    "http://127.1/hook": "127.0.0.1",
    "http://0/hook": "0.0.0.0",
    "http://0.0.0.0:9/hook": "0.0.0.0",
    "http://[::]/hook": "::",
    "http://[::1]:8080/hook": "::1",
    "http://[::ffff:127.0.0.1]/hook": "127.0.0.1",
    "http://[0:0:0:0:0:ffff:7f00:1]/hook": "127.0.0.1",
    "http://[64:ff9b::7f00:1]/hook": "127.0.0.1",
    "https://127。0。0。1/hook": "127.0.0.1",  # ideographic full stops, as IDNA maps them
    "http://１２７.0.0.1/hook": "127.0.0.1",  # fullwidth digits
    "http://user:pw@127.0.0.1/hook": "127.0.0.1",
    "http://example.com@127.0.0.1/hook": "127.0.0.1",
    "http://localhost/hook": "localhost",
    "http://localhost./hook": "localhost",
    "http://LOCALHOST:9/hook": "localhost",
    "http://admin.localhost/hook": "localhost",
    "http://169.254.169.254/latest/meta-data/": "169.254.169.254",
    "http://[fe80::1%25eth0]/hook": "fe80::1",
    "http://10.0.0.1/hook": "10.0.0.1",
}


@pytest.mark.parametrize(("target", "shown"), sorted(ODD_LOOPBACK.items()))
def test_literal_targets_are_refused_in_every_spelling(target: str, shown: str) -> None:
    why = DEFAULT.target_refusal(target)
    assert why is not None and shown in why, why


@pytest.mark.parametrize(
    "target",
    [
        "https://hooks.slack.com/services/T0/B0/x",
        "https://example.com/hook",
        "http://8.8.8.8/x",
        "https://[2606:4700::1]/",
    ],
)
def test_public_and_named_targets_pass_when_stored(target: str) -> None:
    assert DEFAULT.target_refusal(target) is None  # names are checked when resolved


def test_the_literal_is_read_as_the_system_resolver_reads_it() -> None:
    assert literal_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("0x7f.0x0.0x0.0x1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("01.02.03.04") == ipaddress.ip_address("1.2.3.4")
    assert literal_address("[::ffff:7f00:1]") == ipaddress.ip_address("::ffff:127.0.0.1")
    assert literal_address("example.com") is None and literal_address("") is None


# -- the operator's allow-list -----------------------------------------------------------
def test_an_allowed_network_opens_exactly_that_network() -> None:
    policy = OutboundPolicy.of(["10.1.2.3/32", "fd00:1::/64"])
    assert policy.refusal(ipaddress.ip_address("10.1.2.3")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:10.1.2.3")) is None  # the same destination
    assert policy.refusal(ipaddress.ip_address("fd00:1::9")) is None
    for other in ("10.1.2.4", "10.0.0.1", "127.0.0.1", "fd00:2::1", "169.254.169.254"):
        assert policy.refusal(ipaddress.ip_address(other)) is not None, other
    assert policy.target_refusal("http://10.1.2.3:8443/in") is None
    assert policy.target_refusal("http://167838211/in") is None  # 10.1.2.3 as one number
    assert policy.target_refusal("http://10.1.2.4/in") is not None


def test_an_allowed_host_is_not_checked_but_never_reaches_the_unspecified_address() -> None:
    policy = OutboundPolicy.of(hosts=["Alerts.Internal.Example."])
    for host in ("alerts.internal.example", "ALERTS.internal.example.", "alerts.internal.example"):
        assert policy.refusal(ipaddress.ip_address("10.9.8.7"), host=host) is None
    assert policy.refusal(ipaddress.ip_address("10.9.8.7"), host="other.internal.example") is not None
    for never in ("0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "::ffff:0.0.0.0"):
        assert policy.refusal(ipaddress.ip_address(never), host="alerts.internal.example") is not None, never


def test_allowing_everything_still_refuses_the_unspecified_address() -> None:
    policy = OutboundPolicy.of(["0.0.0.0/0", "::/0"])
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    for never in ("0.0.0.0", "::", "ff02::1", "255.255.255.255"):
        assert policy.refusal(ipaddress.ip_address(never)) is not None, never


def test_loopback_names_follow_the_loopback_address() -> None:
    assert LOCAL.target_refusal("http://localhost:9/x") is None
    assert OutboundPolicy.of(hosts=["localhost"]).target_refusal("http://localhost/x") is None
    assert DEFAULT.target_refusal("http://localhost/x") == "localhost is a loopback name"


@pytest.mark.parametrize(
    ("text", "words"),
    [("10.0.0.1/8", "write 10.0.0.0/8"), ("nope", "not an address or network"), ("300.1.1.1", "not an address")],
)
def test_bad_networks_are_explained(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_network(text)


def test_hosts_are_names_and_addresses_are_networks() -> None:
    assert parse_host("Alerts.Example.") == "alerts.example"
    with pytest.raises(ValueError, match="notification_allowed_networks"):
        parse_host("10.0.0.1")
    for bad in ("*.example.com", "a b", "", "x" * 64 + ".example"):
        with pytest.raises(ValueError, match="not a host name"):
            parse_host(bad)


# -- the configuration -------------------------------------------------------------------
@pytest.fixture
def no_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBBUDGET_NOTIFICATION_ALLOWED_NETWORKS", raising=False)
    monkeypatch.delenv("JOBBUDGET_NOTIFICATION_ALLOWED_HOSTS", raising=False)


@pytest.mark.usefixtures("no_allow_list")
def test_the_default_configuration_allows_public_addresses_only() -> None:
    config = Config()
    assert config.notification_allowed_networks == [] and config.notification_allowed_hosts == []
    assert config.outbound_policy() == OutboundPolicy()


@pytest.mark.usefixtures("no_allow_list")
@pytest.mark.parametrize("value", ['["10.1.2.3/32", "fd00::/8"]', "10.1.2.3/32, fd00::/8", "10.1.2.3,fd00::/8"])
def test_the_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("JOBBUDGET_NOTIFICATION_ALLOWED_NETWORKS", value)
    monkeypatch.setenv("JOBBUDGET_NOTIFICATION_ALLOWED_HOSTS", "alerts.internal")
    config = Config()
    assert config.notification_allowed_networks == ["10.1.2.3/32", "fd00::/8"]
    assert config.outbound_policy().allowed_hosts == {"alerts.internal"}


@pytest.mark.usefixtures("no_allow_list")
def test_configuration_errors_name_the_key_and_the_value() -> None:
    with pytest.raises(ValidationError) as bad:
        Config(notification_allowed_networks=["10.0.0.0/8", "10.0.0.1/8"])
    assert bad.value.field == "notification_allowed_networks.1" and bad.value.value == "10.0.0.1/8"
    assert "write 10.0.0.0/8" in str(bad.value) and "Value error" not in str(bad.value)
    with pytest.raises(ValidationError) as bad:
        Config(notification_allowed_hosts=["127.0.0.1"])
    assert bad.value.field == "notification_allowed_hosts.0"


@pytest.mark.usefixtures("no_allow_list")
def test_the_operators_channels_follow_the_same_rule() -> None:
    hook = {"type": "webhook", "target": "http://127.0.0.1:9000/hooks/s3cr3t-token"}
    with pytest.raises(ValidationError) as refused:
        Config(notification_channels=[{"type": "email", "target": "ops@example.com"}, hook])
    assert refused.value.field == "notification_channels[1].target"
    assert "127.0.0.1 is a loopback address" in str(refused.value)
    assert "s3cr3t-token" not in str(refused.value)
    assert Config(notification_channels=[hook], notification_allowed_networks=["127.0.0.1"]).channels()


# -- the checked transport against real receivers -----------------------------------------
def event() -> AlertEvent:
    return AlertEvent(
        id="evt-outbound", type="block", budget_id="b-1", tenant_id="acme", queue_name="ml",
        period_start=date(2024, 1, 1), period_end=date(2024, 1, 31), occurred_at=datetime(2024, 1, 15, tzinfo=UTC),
        current_spend=Decimal("101"), budget_amount=Decimal("100"), utilization=Decimal("1.01"), currency="USD",
        forecast_spend=None, message="over",
    )  # fmt: skip


class FakeDns:
    """A resolver that answers from a script and counts the questions."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receivers() as start:
        yield start()


def hook(url: str) -> NotificationChannel:
    return NotificationChannel(type="webhook", target=url)


def test_the_default_sender_refuses_loopback_and_sends_nothing(receiver: Receiver) -> None:
    for url in (receiver.url(), receiver.url(host="[::ffff:127.0.0.1]"), receiver.url(host="2130706433")):
        with WebhookSender() as sender, pytest.raises(TargetNotAllowedError) as refused:
            sender.send(hook(url), [event()])
        assert refused.value.retryable is False and refused.value.code == "TARGET_NOT_ALLOWED"
        assert "loopback" in refused.value.message
    with SlackSender() as slack, pytest.raises(TargetNotAllowedError):
        slack.send(NotificationChannel(type="slack", target=receiver.url(host="0x7f.1")), [event()])
    assert receiver.requests == []


def test_names_resolving_to_loopback_are_refused_by_the_system_resolver(receiver: Receiver) -> None:
    names = loopback_names()
    if not names:
        pytest.skip("no name of this machine resolves to a loopback address")
    for name in names:
        with WebhookSender() as sender, pytest.raises(TargetNotAllowedError) as refused:
            sender.send(hook(receiver.url(host=name)), [event()])
        assert f"{name} resolves to 127." in refused.value.message
    assert receiver.requests == []


def test_one_refused_answer_refuses_the_request(receiver: Receiver) -> None:
    dns = FakeDns(["93.184.216.34", "127.0.0.1"])  # a public record beside a loopback one
    with WebhookSender(resolver=dns) as sender, pytest.raises(TargetNotAllowedError) as refused:
        sender.send(hook(receiver.url(host="mixed.example.test")), [event()])
    assert "mixed.example.test resolves to 127.0.0.1" in refused.value.message
    assert receiver.requests == [] and dns.asked == ["mixed.example.test"]


def test_the_address_connected_to_is_the_address_checked(receiver: Receiver) -> None:
    # Rebinding: the name first resolves to the allowed receiver, then to a refused
    # address.  Each connection resolves once and connects to what it checked.
    dns = FakeDns(["127.0.0.1"], ["10.255.255.1"])
    target = hook(receiver.url("/in", host="rebind.example.test"))
    with WebhookSender(policy=LOCAL, resolver=dns) as sender:
        sender.send(target, [event()])
    assert dns.asked == ["rebind.example.test"]
    assert [r.headers["host"] for r in receiver.requests] == [f"rebind.example.test:{receiver.port}"]
    with WebhookSender(policy=LOCAL, resolver=dns) as sender, pytest.raises(TargetNotAllowedError) as refused:
        sender.send(target, [event()])  # a new connection: resolved and checked again
    assert "10.255.255.1, which is a private address" in refused.value.message
    assert len(receiver.requests) == 1 and dns.asked == ["rebind.example.test"] * 2


def test_a_redirect_to_an_internal_address_is_not_followed() -> None:
    with http_receivers() as start:
        inside = start()
        outside = start(default=Reply(302, {"Location": inside.url("/admin")}))
        with WebhookSender(policy=LOCAL) as sender, pytest.raises(DeliveryError) as failed:
            sender.send(hook(outside.url()), [event()])
        assert failed.value.status == 302 and failed.value.retryable is False
        assert len(outside.requests) == 1 and inside.requests == []


def test_a_dns_failure_is_retryable(receiver: Receiver) -> None:
    def nowhere(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with WebhookSender(resolver=nowhere) as sender, pytest.raises(DeliveryError) as failed:
        sender.send(hook("https://gone.example.test/x"), [event()])
    assert failed.value.retryable is True and "cannot resolve gone.example.test" in failed.value.message


def test_the_configuration_reaches_the_senders(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    monkeypatch.delenv("JOBBUDGET_NOTIFICATION_ALLOWED_NETWORKS")
    for kind in ("webhook", "slack"):
        sender = sender_for(kind, Config())
        with pytest.raises(TargetNotAllowedError):
            sender.send(NotificationChannel(type=kind, target=receiver.url()), [event()])
        sender = sender_for(kind, Config(notification_allowed_networks=["127.0.0.1/32"]))
        sender.send(NotificationChannel(type=kind, target=receiver.url()), [event()])
    assert len(receiver.requests) == 2


# -- TLS: verified for the host name, not for the address connected to --------------------
@pytest.fixture
def tls_receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Receiver, list[str | None]]]:
    cert, key = self_signed(tmp_path, "DNS:hooks.example.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the only trusted root, for the senders made below
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    names: list[str | None] = []
    server.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc,return-value]
    with http_receivers() as start:
        yield start(tls=server), names


def test_tls_is_verified_for_the_host_name(tls_receiver: tuple[Receiver, list[str | None]]) -> None:
    receiver, names = tls_receiver
    dns = FakeDns(["127.0.0.1"])
    with WebhookSender(policy=LOCAL, resolver=dns) as sender:
        sender.send(hook(receiver.url(host="hooks.example.test")), [event()])
    assert names == ["hooks.example.test"]  # SNI: the name, though the socket went to 127.0.0.1
    assert receiver.requests[0].headers["host"] == f"hooks.example.test:{receiver.port}"
    for host in ("other.example.test", "127.0.0.1"):  # same server, a name its certificate does not carry
        with WebhookSender(policy=LOCAL, resolver=dns) as sender, pytest.raises(DeliveryError) as failed:
            sender.send(hook(receiver.url(host=host)), [event()])
        assert "TLS certificate not trusted" in failed.value.message and failed.value.retryable is False
    assert len(receiver.requests) == 1
