"""Which link targets the shortener accepts, and the normalised URL it redirects to.

In the kernel because the webhooks module checks its receivers' URLs by the same rules
(a webhook URL, like a link, must not point into encurta's own network).

A short link makes encurta vouch for its target, so `check_target` refuses what a shortener
must not launder: script and data schemes (XSS through the redirect), credentials (phishing
with `http://bank.com@evil.com`), targets on the visitor's own network or a cloud metadata
service, and links back to encurta itself (redirect loops).

The browser, not encurta, follows the redirect, so the URL is read the way a browser reads
it (the WHATWG URL standard): a parser mismatch would be a bypass. What the two kinds of
parser read differently (a backslash or `%` in the authority) is refused; what only has
browser meaning (`0x7f.1`, fullwidth digits, IDN) is rewritten into its one canonical form.

DNS is never resolved: the visitor's browser resolves the name later, from its own network,
and a name can be re-pointed at will (DNS rebinding), so an answer here would prove nothing.
The check is on the literal URL; a public name that resolves to a private address
(`127.0.0.1.nip.io`) is out of reach by design.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Collection
from typing import NamedTuple
from urllib.parse import quote

# Present through email-validator (a declared dependency). Unlike the stdlib IDNA 2003 codec,
# it maps names as browsers do (UTS 46, non-transitional): faß.de is xn--fa-hia.de, not fass.de.
import idna

__all__ = ["MAX_LENGTH", "UnsafeTarget", "check_target", "is_local_address"]

MAX_LENGTH = 2048

_SCHEME = "Only http and https links can be shortened."
_CHARACTERS = "The link must not contain spaces or control characters."
_TOO_LONG = f"The link is longer than {MAX_LENGTH} characters."
_NO_HOST = "The link must include a host name."
_CREDENTIALS = "Links must not contain a user name or password."
_INVALID_HOST = "The link's host name is not valid."
_PORT = "The link's port must be a number from 1 to 65535."
_PRIVATE = "The link points at a private or local address."
_OWN = "Links to this encurta instance cannot be shortened."

_C0_OR_SPACE = "".join(map(chr, range(0x21)))  # what browsers strip from both ends
_PRINTABLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# Underscores are not LDH, but real hosts use them and browsers and resolvers accept them.
# Leading or trailing hyphens likewise (browsers skip that check).
_LABEL_RE = re.compile(r"[a-z0-9_-]{1,63}")
_HEX_NUMBER_RE = re.compile(r"0x[0-9a-f]*")
_DIGITS = {8: frozenset("01234567"), 10: frozenset("0123456789"), 16: frozenset("0123456789abcdef")}
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Names that only ever mean something on the visitor's own network (RFC 6761, RFC 8375, the
# `.internal` TLD ICANN reserved for private use, and widespread private-use suffixes).
_LOCAL_SUFFIXES = (
    "localhost", "localdomain", "local", "internal", "intranet", "lan", "home", "corp",
    "private", "home.arpa", "test", "invalid",
)  # fmt: skip
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """The message is shown to the user as the `url` field's error."""


class _Host(NamedTuple):
    text: str  # as it goes into the URL: ASCII, lowercase, IPv6 in brackets
    ip: _IPAddress | None
    zoned: bool = False


def check_target(url: str, *, own_hosts: Collection[str] = (), allow_private: bool = False) -> str:
    """Return the URL to redirect to (normalised), or raise UnsafeTarget saying why.

    The scheme and host are lowercased, the host IDNA-encoded (IP literals canonical) and a
    default port dropped; the path, query and fragment are kept as given, with non-ASCII
    characters percent-encoded (UTF-8) so the result is safe in a Location header.
    """
    text = url.strip(_C0_OR_SPACE)  # as browsers do: a pasted link often carries a newline
    if len(text) > MAX_LENGTH:
        raise UnsafeTarget(_TOO_LONG)
    # Browsers drop tabs and newlines anywhere, so `java\tscript:` is a scheme to them.
    scheme_match = _SCHEME_RE.match(re.sub(r"[\t\n\r]", "", text))
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeTarget(_SCHEME)
    if any(_is_forbidden_character(char) for char in text):
        raise UnsafeTarget(_CHARACTERS)
    rest = text[len(scheme) + 1 :]
    if not rest.startswith("//"):  # `https:evil.com`, `https:/\evil.com`: refused, not guessed
        raise UnsafeTarget(_NO_HOST)
    rest = rest[2:]
    end = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        raise UnsafeTarget(_CREDENTIALS)
    if "\\" in authority:  # the end of the host to a browser, part of it to RFC 3986 parsers
        raise UnsafeTarget(_INVALID_HOST)
    host_text, port_text = _split_port(authority)
    port = _parse_port(port_text)
    host = _parse_host(host_text)
    if host.text.rstrip(".") in {_own_key(entry) for entry in own_hosts}:
        raise UnsafeTarget(_OWN)
    if host.zoned:  # browsers reject zone ids; they only ever name a link-local interface
        raise UnsafeTarget(_PRIVATE if not allow_private and _is_local(host) else _INVALID_HOST)
    if not allow_private and _is_local(host):
        raise UnsafeTarget(_PRIVATE)
    netloc = host.text if port in (None, _DEFAULT_PORTS[scheme]) else f"{host.text}:{port}"
    result = f"{scheme}://{netloc}{quote(tail, safe=_PRINTABLE_ASCII)}"
    if len(result) > MAX_LENGTH:  # IDNA and percent-encoding lengthen
        raise UnsafeTarget(_TOO_LONG)
    return result


def _is_forbidden_character(char: str) -> bool:
    """Whitespace, controls and lone surrogates: a browser would drop or mangle them."""
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cs")


def _split_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        host, bracket, after = authority.partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise UnsafeTarget(_INVALID_HOST)
        return host + bracket, after[1:] if after else None
    host, colon, port = authority.partition(":")
    if ":" in port:  # an IPv6 literal without brackets
        raise UnsafeTarget(_INVALID_HOST)
    return host, port if colon else None


def _parse_port(text: str | None) -> int | None:
    if not text:  # `host:` means the default port to a browser
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise UnsafeTarget(_PORT)
    return int(text)


def _parse_host(text: str) -> _Host:
    """The host as a browser reads it: UTS 46 mapping first, then an IPv4 check, then IDNA."""
    if not text:
        raise UnsafeTarget(_NO_HOST)
    if text.startswith("["):
        return _parse_ipv6(text[1:-1])
    if "%" in text:  # browsers percent-decode hosts; no honest link needs that
        raise UnsafeTarget(_INVALID_HOST)
    try:  # lowercases and maps fullwidth letters, digits and dots, soft hyphens
        mapped = idna.uts46_remap(text, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError):
        raise UnsafeTarget(_INVALID_HOST) from None
    labels = mapped.split(".")
    fqdn = len(labels) > 1 and not labels[-1]
    if fqdn:
        labels.pop()
    last = labels[-1]
    if (last.isascii() and last.isdigit()) or _HEX_NUMBER_RE.fullmatch(last):
        address = _parse_ipv4(labels)  # a browser reads any name ending in a number as IPv4
        return _Host(str(address), address)
    name = ".".join(_ascii_label(label) for label in labels)
    if len(name) > 253:
        raise UnsafeTarget(_INVALID_HOST)
    return _Host(name + "." * fqdn, None)


def _ascii_label(label: str) -> str:
    try:
        if not label.isascii():
            label = "xn--" + label.encode("punycode").decode("ascii")
        elif label.startswith("xn--"):
            decoded = label[4:].encode("ascii").decode("punycode")
            if decoded.isascii() or idna.uts46_remap(decoded, std3_rules=False) != decoded:
                raise UnsafeTarget(_INVALID_HOST)
    except (idna.IDNAError, UnicodeError):
        raise UnsafeTarget(_INVALID_HOST) from None
    if not _LABEL_RE.fullmatch(label):  # also empty labels and those over 63 characters
        raise UnsafeTarget(_INVALID_HOST)
    return label


def _parse_ipv4(parts: list[str]) -> ipaddress.IPv4Address:
    """The WHATWG IPv4 parser: 1 to 4 parts, each decimal, octal (0...) or hex (0x...)."""
    if len(parts) > 4:
        raise UnsafeTarget(_INVALID_HOST)
    numbers = [_ipv4_number(part) for part in parts]
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (5 - len(numbers)):
        raise UnsafeTarget(_INVALID_HOST)
    return ipaddress.IPv4Address(last + sum(n << (8 * (3 - i)) for i, n in enumerate(leading)))


def _ipv4_number(part: str) -> int:
    base = 10
    if part.startswith("0x"):
        part, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        part, base = part[1:], 8
    elif not part:
        raise UnsafeTarget(_INVALID_HOST)
    if not set(part) <= _DIGITS[base]:  # int() alone would also take `_`, `+` and spaces
        raise UnsafeTarget(_INVALID_HOST)
    return int(part, base) if part else 0


def _parse_ipv6(text: str) -> _Host:
    address_text, percent, _zone = text.partition("%")
    try:
        if not address_text.isascii():  # ipaddress is strict, but say so here
            raise ValueError(address_text)
        address = ipaddress.IPv6Address(address_text)
    except ValueError:
        raise UnsafeTarget(_INVALID_HOST) from None
    return _Host(f"[{address.compressed}]", address, zoned=bool(percent))


def _is_local(host: _Host) -> bool:
    if host.ip is not None:
        return _is_local_ip(host.ip)
    name = host.text.rstrip(".")
    if "." not in name:  # `http://intranet/` is completed with the visitor's search domains
        return True
    return any(name == suffix or name.endswith("." + suffix) for suffix in _LOCAL_SUFFIXES)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, compatible), if any."""
    embedded = address.ipv4_mapped or address.sixtofour
    if embedded is None and (address in _NAT64 or address in _IPV4_COMPATIBLE):
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return embedded


def _is_local_ip(address: _IPAddress) -> bool:
    """Anything not globally routable; IPv6 forms that carry an IPv4 address are judged by it."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return _is_local_ip(embedded)
        if address.is_site_local:  # deprecated fec0::/10, still "global" to ipaddress
            return True
    return not address.is_global or address.is_multicast or address.is_reserved


def is_local_address(address: _IPAddress) -> bool:
    """Whether an address is not globally routable (loopback, private, link-local and so
    cloud metadata, multicast, reserved), as `check_target` judges an IP literal."""
    return _is_local_ip(address)


def _own_key(entry: str) -> str:
    """An own host as configured (`sho.rt`, `SHO.RT:8443`, `https://sho.rt/`), for comparing."""
    text = entry.strip().lower().split("://", 1)[-1]
    text = re.split(r"[/?#]", text, maxsplit=1)[0].rpartition("@")[2]
    try:  # a bare IPv6 address, as a socket or `URL.hostname` gives it
        return f"[{ipaddress.IPv6Address(text).compressed}]"
    except ValueError:
        pass
    try:
        return _parse_host(_split_port(text)[0]).text.rstrip(".")
    except UnsafeTarget:
        return text.rstrip(".")
