"""`--allow-http` sends the key in clear to a server of the LAN only: a host made of
numbers is judged as the address every resolver reads in it (`134744072` is 8.8.8.8),
and a LAN name as the addresses it resolves to. No test here needs a DNS: resolution is
replaced (address.addresses_of) where it matters."""

from __future__ import annotations

import io
import ipaddress
import socket

import pytest
from helpers import configure

from oort_lib.arcsecond import address
from oort_lib.arcsecond.address import check_base_url, check_resolved, numeric_address
from oort_lib.arcsecond.client import Client
from oort_lib.errors import ConfigError, InsecureAddress, ServerUnreachable
from oort_lib.samples import write_fits
from oort_lib.state import config as cfg

KEY = "n0tf0ryour3y3s0123456789abcdef00"


@pytest.mark.parametrize("url", ["http://134744072", "http://0x08080808",
                                 "http://010.8.8.8", "http://8.8.2056",
                                 "http://0x8.0x8.0x8.0x8", "http://0x8.8.0x808",
                                 "http://134744072.", "http://[::ffff:8.8.8.8]"])
def test_numeric_hosts_of_public_addresses_are_refused(url):
    for allow_http in (False, True):
        with pytest.raises(ConfigError, match="public host") as info:
            check_base_url(url, allow_http=allow_http)
        if "[" not in url:
            assert "8.8.8.8" in info.value.message  # says which address it is


@pytest.mark.parametrize("url, kind", [
    ("http://3232235777:5555", "lan"),  # 192.168.1.1
    ("http://0xc0a80101", "lan"),
    ("http://012.0.0.1", "lan"),  # 10.0.0.1
    ("http://2130706433:8765", "loopback"),  # 127.0.0.1
    ("http://127.1", "loopback"),
])
def test_numeric_hosts_of_private_addresses_are_what_they_are(url, kind):
    if kind == "loopback":
        assert check_base_url(url) == url
    else:
        with pytest.raises(ConfigError, match="allow-http"):
            check_base_url(url)
        assert check_base_url(url, allow_http=True) == url


@pytest.mark.parametrize("url", ["http://08.8.8.8", "http://1.2.3.4.5", "http://0x",
                                 "http://256.1.1.1.1", "http://4294967296", "http://1.16777216.1"])
def test_hosts_of_numbers_that_are_no_address_are_refused(url):
    with pytest.raises(ConfigError, match="numbers but is no address|public host"):
        check_base_url(url, allow_http=True)


@pytest.mark.parametrize("host", ["134744072", "0x08080808", "010.8.8.8", "8.8.2056",
                                  "0x8.0x8.0x8.0x8", "127.1", "0", "1.2.3", "0377.0xff.65535",
                                  "4294967295", "08.8.8.8", "1.2.3.4.5", "4294967296"])
def test_numbers_are_read_as_the_resolver_reads_them(host):
    """The same verdict as the C library's inet_aton here (computed, not asked, so that
    every platform agrees)."""
    try:
        expected = ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        expected = None
    assert numeric_address(host) == expected


def fake_dns(table: dict):
    def resolve(host: str, port: int) -> list[str]:
        found = table.get(host)
        if found is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return found
    return resolve


DNS = fake_dns({
    "nas.local": ["192.168.1.20"],
    "arcsecond": ["10.0.0.5", "fe80::1%eth0", "::1"],
    "evil.local": ["192.168.1.2", "8.8.8.8"],
    "mapped.lan": ["::ffff:8.8.8.8"],
})


def test_lan_names_are_judged_by_the_addresses_they_resolve_to():
    check_resolved("http://nas.local:5555/api", DNS)
    check_resolved("http://arcsecond", DNS)
    for url, public in (("http://evil.local:5555/api", "8.8.8.8"),
                        ("http://mapped.lan", "::ffff:8.8.8.8")):
        with pytest.raises(InsecureAddress, match=f"resolves to {public}, a public address"):
            check_resolved(url, DNS)
    with pytest.raises(ServerUnreachable, match="gone.local cannot be found") as info:
        check_resolved("http://gone.local:5555/api", DNS)
    assert "Name or service not known" in info.value.message
    for url in ("https://evil.local", "http://127.0.0.1:1", "http://localhost:1",
                "http://192.168.1.2"):
        check_resolved(url, DNS)  # nothing to resolve: the DNS above is never asked


def test_a_lan_name_resolving_to_a_public_address_is_never_sent_the_key(monkeypatch):
    monkeypatch.setattr(address, "addresses_of", DNS)
    client = Client("http://evil.local:5555/api", KEY, allow_http=True, retries=0)
    sent = []
    monkeypatch.setattr(client.session, "request", lambda *a, **k: sent.append(a))
    with pytest.raises(InsecureAddress, match="8.8.8.8"):
        client.request("GET", "/profiles/")
    assert sent == []


def test_login_to_such_a_name_says_so(cli, home, monkeypatch):
    monkeypatch.setattr(address, "addresses_of", DNS)
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
    result = cli("login", "--api=http://evil.local:5555/api", "--allow-http", "--key-stdin")
    assert result.code == 2, result.err
    assert "evil.local resolves to 8.8.8.8, a public address" in result.err
    assert "Traceback" not in result.err and KEY not in result.err
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
    result = cli("login", "--api=http://gone.local:5555/api", "--allow-http", "--key-stdin")
    assert result.code == 4, result.err
    assert "gone.local cannot be found on the network" in result.err
    assert "check the name" in result.err and "Traceback" not in result.err


def test_a_run_to_such_a_name_sends_nothing(cli, home, tmp_path, monkeypatch):
    monkeypatch.setattr(address, "addresses_of", DNS)
    root = tmp_path / "data"
    write_fits(root / "M31" / "m31.fits", {"DATE-OBS": "2021-06-01T22:00:00"})
    configure(home, "http://evil.local:5555/api", KEY, folders=[cfg.Folder(str(root))],
              allow_http=True)
    result = cli("run", "--min-age=0")
    assert result.code == 2, result.err
    assert "8.8.8.8" in result.err and "Traceback" not in result.err
