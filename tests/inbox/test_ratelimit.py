"""inbox.ratelimit's parts: rates, the client address as counted, windows."""

from __future__ import annotations

import pytest
from django.test import override_settings

from inbox import ratelimit
from inbox.ratelimit import Rate
from tests.conftest import wait_for_fresh_window


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10/min", Rate(10, 60)),
        ("5/15min", Rate(5, 900)),
        ("20 / 15m", Rate(20, 900)),
        ("100/hour", Rate(100, 3600)),
        ("3/s", Rate(3, 1)),
        ("1000/day", Rate(1000, 86400)),
        ("off", None),
        ("", None),
    ],
)
def test_rates_parse(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["10", "ten/min", "10/fortnight", "-1/min"])
def test_bad_rates_are_refused_loudly(text):
    with pytest.raises(ValueError, match="Invalid rate"):
        Rate.parse(text)


@pytest.mark.parametrize(
    ("remote", "forwarded", "hops", "expected"),
    [
        ("192.0.2.1", None, 0, "192.0.2.1"),
        ("192.0.2.1", "203.0.113.9", 0, "192.0.2.1"),  # no proxies: the header is ignored
        ("10.0.0.2", "203.0.113.9", 1, "203.0.113.9"),
        ("10.0.0.2", "1.1.1.1, 203.0.113.9", 1, "203.0.113.9"),  # the client's own entry
        ("10.0.0.3", "1.1.1.1, 203.0.113.9, 10.0.0.2", 2, "203.0.113.9"),
        ("10.0.0.2", "203.0.113.9", 3, "203.0.113.9"),  # fewer entries than hops
        ("10.0.0.2", " , ", 1, "10.0.0.2"),
        ("2001:db8:aa:bb::1", None, 0, "2001:db8:aa:bb::/64"),
        ("::ffff:192.0.2.7", None, 0, "192.0.2.7"),
        ("", None, 0, "unknown"),
        ("not-an-ip", None, 0, "not-an-ip"),
        ("x" * 500, None, 0, "x" * 100),  # kept short, whatever a stranger sends
        ("10.0.0.2", "y" * 300, 1, "y" * 100),
    ],
)
def test_client_address(remote, forwarded, hops, expected):
    with override_settings(TICKMARK_TRUSTED_PROXIES=hops):
        assert ratelimit.client_address(remote, forwarded) == expected


def test_the_parsed_addresses_kept_are_bounded_in_number_and_size():
    ratelimit._normalised.cache_clear()  # noqa: SLF001
    for n in range(5000):
        ratelimit.client_address(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", None)
    ratelimit.client_address("z" * 1000, None)
    info = ratelimit._normalised.cache_info()  # noqa: SLF001
    assert info.currsize == info.maxsize == 4096
    assert ratelimit.client_address("10.0.19.135", None) == "10.0.19.135"  # the last one: kept
    assert ratelimit._normalised.cache_info().hits == info.hits + 1  # noqa: SLF001


def test_scope_client_reads_the_asgi_scope():
    scope = {"client": ("10.0.0.2", 4242), "headers": [(b"x-forwarded-for", b"198.51.100.3")]}
    assert ratelimit.scope_client(scope) == "10.0.0.2"
    with override_settings(TICKMARK_TRUSTED_PROXIES=1):
        assert ratelimit.scope_client(scope) == "198.51.100.3"
    assert ratelimit.scope_client({"headers": []}) == "unknown"


def test_hit_peek_reset():
    wait_for_fresh_window(3600)
    rate = Rate(2, 3600)
    assert ratelimit.peek("t", "a", rate).allowed
    assert ratelimit.hit("t", "a", rate).allowed
    assert ratelimit.hit("t", "a", rate).allowed
    refused = ratelimit.hit("t", "a", rate)
    assert not refused.allowed and 0 < refused.retry_after <= 3600
    assert not ratelimit.peek("t", "a", rate).allowed
    assert ratelimit.hit("t", "b", rate).allowed  # another ident
    assert ratelimit.hit("u", "a", rate).allowed  # another scope
    ratelimit.reset("t", "a", rate)
    assert ratelimit.hit("t", "a", rate).allowed
    assert ratelimit.hit("t", "anything", None).allowed  # "off"


def test_hit_each_stops_at_the_first_refusal():
    wait_for_fresh_window(3600)
    narrow, wide = ("n", "client", Rate(1, 3600)), ("w", "inbox", Rate(5, 3600))
    assert ratelimit.hit_each([narrow, wide]).allowed
    for _ in range(10):
        assert not ratelimit.hit_each([narrow, wide]).allowed
    # The wide limit was counted once, not eleven times.
    assert [ratelimit.hit(*wide).allowed for _ in range(5)] == [True] * 4 + [False]
