"""client_ip.py: X-Forwarded-For is believed only from a trusted proxy, read from the right."""

from __future__ import annotations

import pytest

from collector.ingest.client_ip import ClientAddress

PROXY = "10.0.0.5"


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    address = ClientAddress([])
    assert address.resolve("198.51.100.7", None) == "198.51.100.7"
    assert address.resolve("198.51.100.7", "203.0.113.1") == "198.51.100.7"
    assert address.resolve(None, "203.0.113.1") is None


def test_the_header_of_an_untrusted_peer_is_ignored() -> None:
    address = ClientAddress(["10.0.0.0/8"])
    assert address.resolve("198.51.100.7", "203.0.113.1") == "198.51.100.7"
    assert address.resolve("198.51.100.7", "10.0.0.1, 203.0.113.1") == "198.51.100.7"


def test_a_trusted_peer_is_replaced_by_the_client_it_forwards() -> None:
    address = ClientAddress([PROXY])
    assert address.resolve(PROXY, "203.0.113.1") == "203.0.113.1"


def test_without_the_header_a_trusted_peer_is_the_client() -> None:
    address = ClientAddress([PROXY])
    assert address.resolve(PROXY, None) == PROXY
    assert address.resolve(PROXY, "") == PROXY
    assert address.resolve(PROXY, " , ") == PROXY


def test_the_rightmost_untrusted_hop_wins_over_what_the_client_wrote() -> None:
    # the client wrote "1.1.1.1, 2.2.2.2" itself; our proxy appended the address it saw
    address = ClientAddress([PROXY])
    assert address.resolve(PROXY, "1.1.1.1, 2.2.2.2, 203.0.113.1") == "203.0.113.1"


def test_a_chain_of_trusted_proxies_is_skipped() -> None:
    address = ClientAddress(["10.0.0.0/8", "192.168.1.1"])
    assert address.resolve("10.0.0.5", "1.1.1.1, 203.0.113.1, 192.168.1.1, 10.9.9.9") == "203.0.113.1"


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    # e.g. an office on the internal network behind the same load balancer
    address = ClientAddress(["10.0.0.0/8"])
    assert address.resolve("10.0.0.5", "10.1.2.3, 10.0.0.9") == "10.1.2.3"


@pytest.mark.parametrize("header", ["203.0.113.1,10.0.0.9", " 203.0.113.1 ,  10.0.0.9 ", "203.0.113.1, , 10.0.0.9,"])
def test_spacing_and_empty_hops(header: str) -> None:
    assert ClientAddress(["10.0.0.0/8"]).resolve("10.0.0.5", header) == "203.0.113.1"


def test_cidr_ranges_and_single_addresses() -> None:
    address = ClientAddress(["172.16.0.0/12", "127.0.0.1"])
    assert address.is_trusted("172.31.255.255")
    assert not address.is_trusted("172.32.0.1")
    assert address.is_trusted("127.0.0.1")
    assert not address.is_trusted("127.0.0.2")
    assert address.resolve("172.20.1.1", "203.0.113.1") == "203.0.113.1"
    assert address.resolve("172.32.0.1", "203.0.113.1") == "172.32.0.1"


def test_ipv6() -> None:
    address = ClientAddress(["fd00::/8", "::1"])
    assert address.resolve("::1", "2001:db8::1") == "2001:db8::1"
    assert address.resolve("fd12::3", "2001:db8::1, fd00::1") == "2001:db8::1"
    assert address.resolve("2001:db8::9", "2001:db8::1") == "2001:db8::9"
    assert address.is_trusted("[::1]")


def test_host_bits_in_a_network_are_accepted() -> None:
    assert ClientAddress(["10.1.2.3/8"]).is_trusted("10.200.0.1")


def test_garbage_is_never_trusted() -> None:
    address = ClientAddress(["0.0.0.0/0"])
    assert not address.is_trusted("not-an-ip")
    assert not address.is_trusted("")
    assert not address.is_trusted(None)


def test_an_invalid_proxy_list_fails_at_construction() -> None:
    with pytest.raises(ValueError):
        ClientAddress(["not-a-network"])


def test_ports_are_dropped_and_unreadable_hops_end_the_walk():
    from collector.ingest.client_ip import ClientAddress

    address = ClientAddress(["10.0.0.0/8"])
    assert address.resolve("10.0.0.1", "1.2.3.4:5555") == "1.2.3.4"
    assert address.resolve("10.0.0.1", "6.6.6.6, [2001:db8::1]:80") == "2001:db8::1"
    # A hop nobody can read: believe nothing beyond it, keep the last trusted hop.
    assert address.resolve("10.0.0.1", "6.6.6.6, unknown, 10.0.0.5") == "10.0.0.5"
