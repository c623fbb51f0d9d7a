"""check_target: which link targets are refused (and with which message), and how the
accepted ones are normalised. Pure unit tests: no database, no network, no DNS."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from app.modules.shortener.targets import MAX_LENGTH, UnsafeTarget, check_target

# The user-facing messages, pinned here on purpose: changing one is a product decision.
SCHEME = "Only http and https links can be shortened."
CHARACTERS = "The link must not contain spaces or control characters."
TOO_LONG = "The link is longer than 2048 characters."
NO_HOST = "The link must include a host name."
CREDENTIALS = "Links must not contain a user name or password."
INVALID_HOST = "The link's host name is not valid."
PORT = "The link's port must be a number from 1 to 65535."
PRIVATE = "The link points at a private or local address."
OWN = "Links to this encurta instance cannot be shortened."


def refused(url: str, own_hosts: Collection[str] = (), *, allow_private: bool = False) -> str:
    with pytest.raises(UnsafeTarget) as caught:
        check_target(url, own_hosts=own_hosts, allow_private=allow_private)
    return str(caught.value)


HOSTILE = [
    # Schemes other than http(s), and the tricks browsers forgive.
    ("javascript:alert(1)", SCHEME, "javascript"),
    ("JaVaScRiPt:alert(1)", SCHEME, "javascript-mixed-case"),
    ("  javascript:alert(1)", SCHEME, "javascript-leading-spaces"),
    ("\x00\x01\x1fjavascript:alert(1)", SCHEME, "javascript-leading-controls"),
    ("javascript:alert(1)\r\n\t ", SCHEME, "javascript-trailing-whitespace"),
    ("java\tscript:alert(1)", SCHEME, "javascript-tab-in-scheme"),
    ("java\nscript:alert(1)", SCHEME, "javascript-newline-in-scheme"),
    ("j\ra\nv\ta\r\nscript:alert(1)", SCHEME, "javascript-scattered-crlf"),
    ("javascript://example.com/%0Aalert(1)", SCHEME, "javascript-with-host"),
    ("javascript%3Aalert(1)", SCHEME, "javascript-percent-encoded-colon"),
    ("%6Aavascript:alert(1)", SCHEME, "javascript-percent-encoded-letter"),
    ("\uff4a\uff41\uff56\uff41script:alert(1)", SCHEME, "javascript-fullwidth-letters"),
    ("\u00a0javascript:alert(1)", SCHEME, "javascript-leading-nbsp"),
    ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", SCHEME, "data"),
    ("DATA:text/html,<script>alert(1)</script>", SCHEME, "data-uppercase"),
    ("file:///etc/passwd", SCHEME, "file"),
    ("file://localhost/etc/passwd", SCHEME, "file-with-host"),
    ("vbscript:msgbox(1)", SCHEME, "vbscript"),
    ("ftp://example.com/pub/file", SCHEME, "ftp"),
    ("mailto:ana@example.com", SCHEME, "mailto"),
    ("blob:https://example.com/4f1c2d", SCHEME, "blob"),
    ("wss://example.com/socket", SCHEME, "websocket"),
    ("//evil.example/", SCHEME, "protocol-relative"),
    ("example.com/page", SCHEME, "no-scheme"),
    ("", SCHEME, "empty"),
    ("https\uff1a//example.com/", SCHEME, "fullwidth-colon"),
    # No host, or a host only a forgiving parser would find.
    ("https://", NO_HOST, "nothing-after-slashes"),
    ("https:///evil.example/", NO_HOST, "three-slashes"),
    ("https:evil.example", NO_HOST, "no-slashes"),
    ("https:/evil.example", NO_HOST, "one-slash"),
    ("https:\\\\evil.example", NO_HOST, "backslashes"),
    ("https:/\\evil.example", NO_HOST, "slash-backslash"),
    ("https://\\evil.example", INVALID_HOST, "backslash-after-slashes"),
    ("https://?q=1", NO_HOST, "query-only"),
    ("http://:8080/", NO_HOST, "port-only"),
    # Credentials, including the `good@evil` phishing shape.
    ("http://user@example.com/", CREDENTIALS, "user"),
    ("http://user:pass@example.com/", CREDENTIALS, "user-password"),
    ("http://good.example@evil.example/", CREDENTIALS, "host-as-user"),
    ("https://good.example:443@evil.example/", CREDENTIALS, "host-port-as-user"),
    ("https://@evil.example/", CREDENTIALS, "empty-user"),
    ("http://good.example\\@evil.example/", CREDENTIALS, "backslash-at"),
    ("http://admin:admin@10.0.0.1/", CREDENTIALS, "credentials-to-private"),
    # Local names.
    ("http://localhost/", PRIVATE, "localhost"),
    ("http://LOCALHOST:8000/admin", PRIVATE, "localhost-uppercase-port"),
    ("http://localhost./", PRIVATE, "localhost-trailing-dot"),
    ("http://app.localhost/", PRIVATE, "sub-localhost"),
    (
        "http://\uff2c\uff2f\uff23\uff21\uff2c\uff28\uff2f\uff33\uff34/",
        PRIVATE,
        "fullwidth-localhost",
    ),
    ("http://local\u00adhost/", PRIVATE, "soft-hyphen-localhost"),
    ("http://printer.local/", PRIVATE, "mdns-local"),
    ("http://metadata.google.internal/computeMetadata/v1/", PRIVATE, "gcp-metadata"),
    ("http://db.internal./", PRIVATE, "internal-trailing-dot"),
    ("http://nas.localdomain/", PRIVATE, "localdomain"),
    ("http://router.home.arpa/", PRIVATE, "home-arpa"),
    ("http://intranet/", PRIVATE, "single-label"),
    # IPv4 literals in every notation a browser accepts.
    ("http://127.0.0.1/", PRIVATE, "loopback"),
    ("http://127.1/", PRIVATE, "loopback-short"),
    ("http://2130706433/", PRIVATE, "loopback-decimal"),
    ("http://0177.0.0.1/", PRIVATE, "loopback-octal"),
    ("http://0x7f.0.0.1/", PRIVATE, "loopback-hex-octet"),
    ("http://0x7f000001/", PRIVATE, "loopback-hex"),
    ("http://0X7F.1/", PRIVATE, "loopback-hex-short-uppercase"),
    ("http://017700000001/", PRIVATE, "loopback-octal-integer"),
    ("http://127.0.0.1./", PRIVATE, "loopback-trailing-dot"),
    ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", PRIVATE, "loopback-fullwidth"),
    ("http://127\u30020\u30020\u30021/", PRIVATE, "loopback-ideographic-dots"),
    ("http://10.0.0.1/", PRIVATE, "rfc1918-10"),
    ("http://10.1/", PRIVATE, "rfc1918-10-short"),
    ("http://012.1/", PRIVATE, "rfc1918-10-octal-short"),
    ("http://0x0a.0x00.0x00.0x01/", PRIVATE, "rfc1918-10-hex"),
    ("http://172.16.5.4/", PRIVATE, "rfc1918-172"),
    ("http://192.168.1.1:8080/", PRIVATE, "rfc1918-192"),
    ("http://3232235777/", PRIVATE, "rfc1918-192-decimal"),
    ("http://100.64.0.1/", PRIVATE, "cgnat"),
    ("http://169.254.169.254/latest/meta-data/", PRIVATE, "aws-metadata"),
    ("http://0.0.0.0/", PRIVATE, "unspecified"),
    ("http://0/", PRIVATE, "unspecified-zero"),
    ("http://0x/", PRIVATE, "unspecified-empty-hex"),
    ("http://224.0.0.1/", PRIVATE, "multicast"),
    ("http://240.0.0.1/", PRIVATE, "reserved"),
    ("http://255.255.255.255/", PRIVATE, "broadcast"),
    ("http://198.18.0.1/", PRIVATE, "benchmarking"),
    # IPv6 literals, and IPv6 forms carrying a private IPv4 address.
    ("http://[::1]/", PRIVATE, "v6-loopback"),
    ("http://[0:0:0:0:0:0:0:1]:80/", PRIVATE, "v6-loopback-long"),
    ("http://[::]/", PRIVATE, "v6-unspecified"),
    ("http://[::ffff:127.0.0.1]/", PRIVATE, "v4-mapped-dotted"),
    ("http://[::ffff:7f00:1]/", PRIVATE, "v4-mapped-hex"),
    ("http://[::FFFF:A9FE:A9FE]/", PRIVATE, "v4-mapped-metadata-uppercase"),
    ("http://[::127.0.0.1]/", PRIVATE, "v4-compatible"),
    ("http://[64:ff9b::10.0.0.1]/", PRIVATE, "nat64-private"),
    ("http://[64:ff9b::7f00:1]/", PRIVATE, "nat64-loopback-hex"),
    ("http://[2002:7f00:1::1]/", PRIVATE, "6to4-loopback"),
    ("http://[2002:c0a8:101::]/", PRIVATE, "6to4-private"),
    ("http://[fe80::1]/", PRIVATE, "v6-link-local"),
    ("http://[fe80::1%25eth0]/", PRIVATE, "v6-link-local-zone"),
    ("http://[fc00::1]/", PRIVATE, "v6-unique-local"),
    ("http://[fd00:ec2::254]/latest/meta-data/", PRIVATE, "aws-metadata-v6"),
    ("http://[fec0::1]/", PRIVATE, "v6-site-local"),
    ("http://[ff02::1]/", PRIVATE, "v6-multicast"),
    ("http://[2001:db8::1]/", PRIVATE, "v6-documentation"),
    # Hosts that are not hosts.
    ("http://example..com/", INVALID_HOST, "empty-label"),
    ("http://.example.com/", INVALID_HOST, "leading-dot"),
    ("http://example.com../", INVALID_HOST, "two-trailing-dots"),
    ("http://" + "a" * 64 + ".com/", INVALID_HOST, "label-over-63"),
    ("http://" + "a." * 127 + "com/", INVALID_HOST, "name-over-253"),
    ("http://exa%6Dple.com/", INVALID_HOST, "percent-encoded-host"),
    ("http://127.0.0.1%2F@evil.example/", CREDENTIALS, "percent-slash-then-at"),
    ("http://evil.example\\.good.example/", INVALID_HOST, "backslash-in-host"),
    ("http://exa<mple.com/", INVALID_HOST, "angle-bracket"),
    ("http://exa\uff20mple.com/", INVALID_HOST, "fullwidth-at"),
    ("http://example.com\uff0fpath/", INVALID_HOST, "fullwidth-slash"),
    ("http://1.2.3.4.5/", INVALID_HOST, "five-part-ipv4"),
    ("http://256.0.0.1/", INVALID_HOST, "octet-over-255"),
    ("http://1.16777216/", INVALID_HOST, "last-part-too-big"),
    ("http://09.0.0.1/", INVALID_HOST, "bad-octal"),
    ("http://0xg.0.0.1/", INVALID_HOST, "bad-hex"),
    ("http://1_0.0.0.1/", INVALID_HOST, "underscore-in-number"),
    ("http://example.123/", INVALID_HOST, "numeric-tld"),
    ("http://xn--zz/", INVALID_HOST, "bad-punycode"),
    ("http://xn--localhost-.com/", INVALID_HOST, "punycode-of-ascii"),
    ("http://[::1/", INVALID_HOST, "unclosed-bracket"),
    ("http://[::1]x/", INVALID_HOST, "junk-after-bracket"),
    ("http://[1::2::3]/", INVALID_HOST, "bad-ipv6"),
    ("http://[v1.fe]/", INVALID_HOST, "ipvfuture"),
    ("http://[127.0.0.1]/", INVALID_HOST, "bracketed-ipv4"),
    ("http://::1/", INVALID_HOST, "unbracketed-ipv6"),
    ("http://[2606:4700::1%25eth0]/", INVALID_HOST, "zone-on-public-v6"),
    # Ports.
    ("http://example.com:0/", PORT, "port-zero"),
    ("http://example.com:65536/", PORT, "port-too-big"),
    ("http://example.com:99999999999999999999/", PORT, "port-huge"),
    ("http://example.com:8o/", PORT, "port-letter"),
    ("http://example.com:-1/", PORT, "port-negative"),
    ("http://example.com:+80/", PORT, "port-plus"),
    ("http://example.com:\uff18\uff10/", PORT, "port-fullwidth-digits"),
    # Whitespace and controls inside the link.
    ("https://exa mple.com/", CHARACTERS, "space-in-host"),
    ("https://exa\nmple.com/", CHARACTERS, "newline-in-host"),
    ("ht\ttps://example.com/", CHARACTERS, "tab-in-http-scheme"),
    ("https://example.com/a b", CHARACTERS, "space-in-path"),
    ("https://example.com/?q=a\tb", CHARACTERS, "tab-in-query"),
    ("https://example.com/#a\x00b", CHARACTERS, "nul-in-fragment"),
    ("https://example.com/\x7f", CHARACTERS, "del"),
    ("https://example.com/\x85", CHARACTERS, "c1-control"),
    ("https://example.com/\u3000", CHARACTERS, "ideographic-space"),
    ("https://example.com/\u2028", CHARACTERS, "line-separator"),
    ("https://example.com/\ud800", CHARACTERS, "lone-surrogate"),
    # Length.
    ("https://example.com/" + "a" * MAX_LENGTH, TOO_LONG, "too-long"),
    ("javascript:" + "a" * 10_000, TOO_LONG, "too-long-wins-over-scheme"),
]


@pytest.mark.parametrize(("url", "message"), [c[:2] for c in HOSTILE], ids=[c[2] for c in HOSTILE])
def test_a_hostile_target_is_refused_saying_why(url: str, message: str) -> None:
    assert refused(url) == message


def test_there_are_enough_hostile_cases_and_each_is_distinct() -> None:
    urls = [case[0] for case in HOSTILE]
    assert len(HOSTILE) >= 40 and len(set(urls)) == len(urls)


ACCEPTED = [
    ("https://example.com", "https://example.com", "bare"),
    ("https://example.com/", "https://example.com/", "root"),
    (
        "HTTPS://WWW.Example.COM/Path/To?Q=A#Frag",
        "https://www.example.com/Path/To?Q=A#Frag",
        "case",
    ),
    ("  https://example.com/page\r\n", "https://example.com/page", "pasted-with-whitespace"),
    ("https://bücher.example/", "https://xn--bcher-kva.example/", "idn"),
    ("https://BÜCHER.example/", "https://xn--bcher-kva.example/", "idn-uppercase"),
    ("https://faß.de/", "https://xn--fa-hia.de/", "idn-nontransitional-sharp-s"),
    ("https://例え.jp/", "https://xn--r8jz45g.jp/", "idn-japanese"),
    ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/", "punycode-kept"),
    ("https://example.com/straße?q=ç#é", "https://example.com/stra%C3%9Fe?q=%C3%A7#%C3%A9", "utf8"),
    (
        "https://example.com/a%20b/%2F?q=%41&x=%zz",
        "https://example.com/a%20b/%2F?q=%41&x=%zz",
        "pct",
    ),
    (
        "https://example.com/search?q=a+b&lang=pt-BR&x=",
        "https://example.com/search?q=a+b&lang=pt-BR&x=",
        "query",
    ),
    ("https://example.com/#/route?x=1", "https://example.com/#/route?x=1", "fragment"),
    ("https://example.com:8443/x", "https://example.com:8443/x", "port"),
    ("https://example.com:443/x", "https://example.com/x", "https-default-port-dropped"),
    ("http://example.com:80/", "http://example.com/", "http-default-port-dropped"),
    ("http://example.com:443/", "http://example.com:443/", "other-scheme-default-port-kept"),
    ("http://example.com:08080/", "http://example.com:8080/", "port-leading-zero"),
    ("https://example.com:/x", "https://example.com/x", "empty-port"),
    ("http://8.8.8.8/", "http://8.8.8.8/", "public-ipv4"),
    ("http://134744072/dns", "http://8.8.8.8/dns", "public-ipv4-decimal"),
    ("http://0x8.010.8.8/", "http://8.8.8.8/", "public-ipv4-mixed-notation"),
    ("http://[2606:4700:4700::1111]/", "http://[2606:4700:4700::1111]/", "public-ipv6"),
    (
        "http://[2606:4700:4700:0:0:0:0:1111]:8080/",
        "http://[2606:4700:4700::1111]:8080/",
        "v6-long",
    ),
    ("http://[2002:808:808::1]/", "http://[2002:808:808::1]/", "6to4-public"),
    ("https://medium.com/@ana/post", "https://medium.com/@ana/post", "at-in-path"),
    (
        "https://example.com/?next=http://localhost/",
        "https://example.com/?next=http://localhost/",
        "q",
    ),
    ("https://example.com/#@evil.example", "https://example.com/#@evil.example", "at-in-fragment"),
    ("https://my_service.example.com/", "https://my_service.example.com/", "underscore"),
    ("https://example.com./", "https://example.com./", "trailing-dot-kept"),
    ("https://a-.b--c.example/", "https://a-.b--c.example/", "odd-hyphens"),
    ("https://example.com/a\\b", "https://example.com/a\\b", "backslash-in-path"),
    ("https://1e100.net/", "https://1e100.net/", "digit-leading-label"),
    ("https://" + "a" * 63 + ".com/", "https://" + "a" * 63 + ".com/", "label-of-63"),
]


@pytest.mark.parametrize(
    ("url", "expected"), [c[:2] for c in ACCEPTED], ids=[c[2] for c in ACCEPTED]
)
def test_a_legitimate_target_is_accepted_and_normalised(url: str, expected: str) -> None:
    assert check_target(url) == expected


@pytest.mark.parametrize("url", [c[1] for c in ACCEPTED], ids=[c[2] for c in ACCEPTED])
def test_normalising_is_idempotent(url: str) -> None:
    assert check_target(url) == url


def test_exactly_2048_characters_is_accepted_and_2049_refused() -> None:
    base = "https://example.com/"
    longest = base + "a" * (MAX_LENGTH - len(base))

    assert len(longest) == 2048 and check_target(longest) == longest
    assert refused(longest + "a") == TOO_LONG


def test_the_length_limit_applies_to_what_is_stored() -> None:
    """Percent-encoding lengthens a link; the stored form must fit too."""
    assert refused("https://example.com/" + "é" * 1000) == TOO_LONG


def test_unsafe_target_is_a_value_error() -> None:
    assert issubclass(UnsafeTarget, ValueError)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://10.0.0.1/", "http://10.0.0.1/"),
        ("http://localhost:8000/x", "http://localhost:8000/x"),
        ("http://0x7f000001/", "http://127.0.0.1/"),
        ("http://[::1]:3000/", "http://[::1]:3000/"),
        ("http://printer.local/", "http://printer.local/"),
        ("http://intranet/wiki", "http://intranet/wiki"),
    ],
)
def test_allow_private_lets_local_targets_through(url: str, expected: str) -> None:
    assert check_target(url, allow_private=True) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("javascript:alert(1)", SCHEME),
        ("data:text/html,hi", SCHEME),
        ("http://user:pass@10.0.0.1/", CREDENTIALS),
        ("http://10.0.0.1:0/", PORT),
        ("http://[fe80::1%25eth0]/", INVALID_HOST),
        ("http://sho.rt/abc", OWN),
    ],
)
def test_allow_private_still_refuses_everything_else(url: str, message: str) -> None:
    assert refused(url, allow_private=True, own_hosts={"sho.rt"}) == message


OWN_HOSTS = ("sho.rt", "BÜCHER.example:8443", "https://links.example.org/")


@pytest.mark.parametrize(
    "url",
    [
        "https://sho.rt/abc",
        "http://sho.rt",
        "https://SHO.RT/abc",
        "https://sho.rt./abc",
        "https://sho.rt:443/abc",
        "http://Sho.Rt.:8080/abc",
        "https://\uff53\uff48\uff4f.\uff52\uff54/abc",
        "https://xn--bcher-kva.example/x",
        "https://bücher.example:9999/x",
        "https://LINKS.example.org/abc",
    ],
)
def test_links_to_encurta_itself_are_refused(url: str) -> None:
    assert refused(url, own_hosts=OWN_HOSTS) == OWN


@pytest.mark.parametrize(
    "url", ["https://www.sho.rt/abc", "https://sho.rt.evil.example/", "https://evil.example/sho.rt"]
)
def test_only_the_exact_own_hosts_are_refused(url: str) -> None:
    assert check_target(url, own_hosts=OWN_HOSTS) == url


def test_own_ip_hosts_are_compared_in_canonical_form() -> None:
    own = ["127.0.0.1:8000", "[::1]:8000"]

    assert refused("http://0x7f000001:8000/x", own_hosts=own, allow_private=True) == OWN
    assert refused("http://[0::1]/x", own_hosts=own, allow_private=True) == OWN


def test_a_bare_ipv6_own_host_is_recognised() -> None:
    """Sockets and `URL.hostname` give IPv6 without brackets: the instance's own address."""
    own = ["2a00:1450:4001::10"]

    assert refused("https://[2a00:1450:4001:0::10]/x", own_hosts=own) == OWN
    assert refused("https://[2A00:1450:4001::10]:8443/x", own_hosts=own) == OWN
    assert check_target("https://[2a00:1450:4001::11]/x", own_hosts=own) == (
        "https://[2a00:1450:4001::11]/x"
    )
