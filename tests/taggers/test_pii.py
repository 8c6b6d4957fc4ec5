"""The PII tagger: exact spans for positives, nothing at all for the hard negatives, and sane doc scores.

Every text here was written for these tests. Expected spans are given as the exact substring; the test
checks both the characters and the position (`text.index(substring)`), so a span that swallows a bracket,
a full stop or a newline fails.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import time

import pytest

from dolma_kit.documents import Document
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers import registry
from dolma_kit.taggers.pii import (
    _VALID_IPV6,
    DOLMA_FAST_V2_ATTRIBUTES,
    EMAIL_ADDRESS,
    IP_ADDRESS,
    PHONE_NUMBER,
    PII_KINDS,
    PII_REPLACEMENTS,
    PiiConfig,
    PiiRegex,
    find_emails,
    find_ip_addresses,
    find_phone_numbers,
)

EMAIL, PHONE, IP = EMAIL_ADDRESS, PHONE_NUMBER, IP_ADDRESS


def found(text: str, **config: object) -> list[tuple[str, str, int]]:
    """(kind, covered text, start) for every span the default tagger finds."""
    tagger = PiiRegex(PiiConfig(**config))  # type: ignore[arg-type]
    return [(kind, text[s:e], s) for s, e, kind in tagger.find(text)]


def expect(text: str, *pairs: tuple[str, str]) -> list[tuple[str, str, int]]:
    """The exact spans `pairs` (kind, substring) stand for: each substring at its first occurrence."""
    return [(kind, sub, text.index(sub)) for kind, sub in pairs]


# ------------------------------------------------------------------------------------------------------
# Positives: exact spans
# ------------------------------------------------------------------------------------------------------

EMAIL_CASES = [
    ("Write to jane.roe@example.org.", "jane.roe@example.org"),  # full stop at the end of a sentence
    ("Contact: <jane.roe@example.org>", "jane.roe@example.org"),
    ("Questions (maria.garcia@correo.example.es) welcome", "maria.garcia@correo.example.es"),
    ("Subscribe as ana+newsletter@example.com today", "ana+newsletter@example.com"),
    ("Ops lives at ops@mail.eu.example.co.uk, not here", "ops@mail.eu.example.co.uk"),
    ("Schreiben Sie an info@müller-bau.de, danke.", "info@müller-bau.de"),
    ("Écrivez à marie.dupont@exemple.fr !", "marie.dupont@exemple.fr"),
    ("Пишите: иван@почта.рф.", "иван@почта.рф"),
    ("邮箱zhang.wei@example.cn请联系", "zhang.wei@example.cn"),  # CJK glued on both sides
    ("Click mailto:someone@example.com to write", "someone@example.com"),
    ("/signup?email=jane@example.org&ref=2", "jane@example.org"),
    ("SHOUTING AT JANE@EXAMPLE.ORG NOW", "JANE@EXAMPLE.ORG"),
    ("punycode user@xn--mller-kva.de works", "user@xn--mller-kva.de"),
    ("tab\tjoe_o-neil@uni.example.edu\tend", "joe_o-neil@uni.example.edu"),
    ("her address was 'k.lee@example.io'.", "k.lee@example.io"),
]


@pytest.mark.parametrize(("text", "address"), EMAIL_CASES)
def test_email_positives(text: str, address: str) -> None:
    assert found(text) == expect(text, (EMAIL, address))


PHONE_CASES = [
    ("Call +1 (555) 123-4567 today", "+1 (555) 123-4567"),
    ("Call 555-123-4567 today", "555-123-4567"),
    ("Office: (555) 123-4567", "(555) 123-4567"),
    ("London office +44 20 7946 0958 (main)", "+44 20 7946 0958"),
    ("Berlin: +49 30 1234567.", "+49 30 1234567"),
    ("Dots work too: 555.123.4567.", "555.123.4567"),
    ("Toll free 1-800-555-0199 anytime", "1-800-555-0199"),
    ("Appelez le +33 1 23 45 67 89 demain", "+33 1 23 45 67 89"),
    ("Zentrale +49 (0)30 1234567 anrufen", "+49 (0)30 1234567"),
    ("Telefon: 030 1234567", "030 1234567"),
    ("Tel.: 089/1234567, Fax folgt", "089/1234567"),
    ("Téléphone : 01 23 45 67 89.", "01 23 45 67 89"),
    ("Mobile 06.12.34.56.78 le soir", "06.12.34.56.78"),
    ("Compact +14155550123 form", "+14155550123"),
    ("UK landline 020 7946 0958 here", "020 7946 0958"),
    ("Moscow +7 495 123-45-67 office", "+7 495 123-45-67"),
    ("(call 555-123-4567)", "555-123-4567"),
    ("Fon 0049 30 1234567 (Zentrale)", "0049 30 1234567"),
    ("Kontakt: 0221 / 123 456 78", "0221 / 123 456 78"),
]


@pytest.mark.parametrize(("text", "number"), PHONE_CASES)
def test_phone_positives(text: str, number: str) -> None:
    assert found(text) == expect(text, (PHONE, number))


IP_CASES = [
    ("Requests from 192.168.1.20 were dropped", "192.168.1.20"),
    ("The gateway is 10.0.0.1.", "10.0.0.1"),
    ("Connect to 192.168.1.1:8080 first", "192.168.1.1"),
    ("Open http://203.0.113.7/admin now", "203.0.113.7"),
    ("The block 10.0.0.0/8 is private", "10.0.0.0"),
    ("Full 2001:0db8:85a3:0000:0000:8a2e:0370:7334 form", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("Compressed 2001:db8::1 form", "2001:db8::1"),
    ("Listen on [::1]:8080 locally", "::1"),
    ("Browse https://[2001:db8::42]:443/ now", "2001:db8::42"),
    ("Link-local fe80::1%eth0 interface", "fe80::1"),  # the zone id is not part of the span
    ("Mapped ::ffff:192.0.2.1 address", "::ffff:192.0.2.1"),
    ("Router fe80::1: link down", "fe80::1"),
    ("Adresse IP : 172.16.0.5 (bureau)", "172.16.0.5"),
]


@pytest.mark.parametrize(("text", "address"), IP_CASES)
def test_ip_positives(text: str, address: str) -> None:
    assert found(text) == expect(text, (IP, address))


def test_several_kinds_in_order() -> None:
    text = "Mail ops@example.com, call +44 20 7946 0958 or ssh to 10.1.2.3; backup at 2001:db8::7."
    assert found(text) == expect(
        text,
        (EMAIL, "ops@example.com"),
        (PHONE, "+44 20 7946 0958"),
        (IP, "10.1.2.3"),
        (IP, "2001:db8::7"),
    )


def test_three_ipv4_in_a_list() -> None:
    text = "Mit 8.8.8.8, 1.1.1.1 und 9.9.9.9 testen"
    assert [t for _, t, _ in found(text)] == ["8.8.8.8", "1.1.1.1", "9.9.9.9"]


def test_two_phones_in_one_run_of_digits_and_punctuation() -> None:
    text = "Call 555-123-4567 / 555-987-6543, thanks"
    assert found(text) == expect(text, (PHONE, "555-123-4567"), (PHONE, "555-987-6543"))


def test_numbered_list_item_before_phone() -> None:
    text = "1) (555) 123-4567\n2) 555-987-6543"
    assert found(text) == expect(text, (PHONE, "(555) 123-4567"), (PHONE, "555-987-6543"))


def test_email_outranks_phone_shaped_local_part() -> None:
    text = "write 555-123-4567@example.com"
    assert found(text) == expect(text, (EMAIL, "555-123-4567@example.com"))


def test_spans_never_include_newlines_and_masking_keeps_lines() -> None:
    text = "first jane@example.org\n(555) 123-4567\n[::1]:80\nlast line\n"
    tagger = PiiRegex()
    spans = tagger.find(text)
    assert [k for _, _, k in spans] == [EMAIL, PHONE, IP]
    assert all("\n" not in text[s:e] and text[s:e] == text[s:e].strip() for s, e, _ in spans)
    masked, last = [], 0
    for s, e, kind in spans:
        masked += [text[last:s], PII_REPLACEMENTS[kind]]
        last = e
    masked.append(text[last:])
    assert "".join(masked) == (
        "first |||EMAIL_ADDRESS|||\n|||PHONE_NUMBER|||\n[|||IP_ADDRESS|||]:80\nlast line\n"
    )


# ------------------------------------------------------------------------------------------------------
# Hard negatives: nothing at all
# ------------------------------------------------------------------------------------------------------

NEGATIVES = {
    # dates and times
    "iso date": "Released on 2021-03-14 in the morning",
    "german date": "Am 14.03.2021 beginnt der Kurs",
    "german short date": "den 3.10.2021 feiern",
    "us date": "Due 03/14/2021 at noon",
    "slash iso date": "Archive 2021/03/14 entries",
    "time": "Doors open at 12:30:45 sharp",
    "time range": "Open 09:00-17:30, Mon-Fri",
    "year range": "Seasons 1994-2021 and 2019–2021",
    "timestamp": "logged 2021-03-14T12:30:45.123Z by cron",
    # prices and large numbers, several conventions
    "us price": "It costs $1,234.56 plus tax",
    "euro price de": "Preis: €1.234,56 inklusive MwSt.",
    "euro price fr": "Prix : 1 234,56 € TTC",
    "space thousands fr": "La ville compte 1 234 567 habitants",
    "space thousands long": "Budget 12 345 678 901 euros",
    "nbsp thousands": "soit 1\u00a0234\u00a0567 personnes",
    "dot thousands de": "Die Stadt hat 1.234.567 Einwohner",
    "dot billions de": "Schulden von 2.147.483.647 Euro",
    "comma thousands": "Population 1,234,567 in 2020",
    "plus thousands": "Growth of +1 234 567 users",
    "plus thousands long": "Growth of +1 234 567 890 users",
    "double zero thousands": "Code 001 234 567 here",
    "number table": "Values 10 200 300 4000 5000",
    # versions
    "semver": "Upgrade to 1.2.3 now",
    "v-version": "macOS v10.15.7 is required",
    "four-part version with word": "Install version 2.0.0.1 today",
    "four-part version prerelease": "Try 2.0.0.1-beta first",
    "four-part version build metadata": "Built 1.2.3.4+20240101 nightly",
    "v-prefixed four-part": "Firmware v2.0.0.1 shipped",
    "release four-part": "Release: 4.3.2.1 notes",
    "section numbering": "See section 3.1.2.4 for details",
    "paragraph sign": "Gemäß § 1.2.3.4 gilt",
    "five-part": "Build 1.2.3.4.5 failed",
    "oid": "OID 1.3.6.1.4.1.311 registered",
    # IPv4-like but invalid
    "octet over 255": "Address 256.1.1.1 is invalid",
    "leading zeros": "Code 01.02.03.04 printed",
    "ip glued to word": "id192.168.1.1x",
    # identifiers
    "isbn13": "ISBN 978-3-16-148410-0 (hardcover)",
    "isbn13 label": "ISBN-13: 978-0-306-40615-7",
    "isbn10": "ISBN 0-306-40615-2 (paperback)",
    "issn": "ISSN 0317-8471 journal",
    "isbn with phone shape": "ISBN 555-123-4567 misprint",
    "doi": "doi:10.1000/182 resolves",
    "ssn shape": "Form 123-45-6789 attached",
    # postal codes
    "us zip": "Beverly Hills, CA 90210",
    "us zip+4": "Mail to 90210-1234 please",
    "german plz": "10115 Berlin, Invalidenstraße 1",
    "french code postal": "75008 Paris, France",
    # long digit runs
    "card spaced": "Card 4111 1111 1111 1111 expired",
    "card dashed": "Card 4111-1111-1111-1111 expired",
    "card plain": "Card 4111111111111111 expired",
    "amex spaced": "Card 3782 822463 10005 expired",
    "unseparated ten digits": "Order 5551234567 shipped",
    "iban": "IBAN DE89 3704 0044 0532 0130 00",
    "phone too long": "Ref +44 20 7946 0958 1234 5678 99",
    # MAC addresses, code with colons
    "mac colon": "MAC 00:1A:2B:3C:4D:5E on eth0",
    "mac dash": "MAC 00-1A-2B-3C-4D-5E on eth0",
    "cpp scope": "std::vector<int> v; std::map<a, b> m;",
    "cpp nested scope": "Foo::Bar::baz(); A::B",
    "hex scope": "call add::ef() and dead::beef",
    "haskell signature": "f :: Int -> Int",
    "double colon prose": "Title :: Subtitle",
    "ratio": "mixed 1:2:3 by volume",
    # @ in code and markup
    "python matmul": "y = a@b.T + c",
    "python matmul method": "z = x@W.transpose()",
    "python matmul attribute": "y = x@self.weight + self.bias",
    "python matmul shape": "n = (a@b.shape[0])",
    "decorator": "@property\ndef name(self): ...",
    "decorator with args": '@app.route("/")\ndef index(): ...',
    "npm scope": "npm i @scope/pkg@1.2.3",
    "css media": "@media (max-width: 600px) { a { b: c } }",
    "css import": "@import url('theme.css');",
    "git scp url": "git clone git@github.com:org/repo.git",
    "git ssh url": "git clone ssh://git@github.com/org/repo.git",
    "https login": "see https://admin@intranet.example.com/panel",
    "percent format": 'addr = "%s@%s" % (user, host)',
    "percent format with domain": 'addr = "%s@example.com" % user',
    "f-string": 'addr = f"{user}@{domain}"',
    "f-string fixed domain": 'addr = f"{user}@example.com"',
    "str format": 'addr = "{}@{}".format(user, host)',
    "concatenation": 'addr = user + "@" + domain',
    "shell variable": "ssh $USER@$HOST",
    "no dot domain": "root@localhost and admin@server",
    "handle": "Follow @jane_doe and @example.com",
    "lonely at": "Meet @ 5pm @ the cafe",
    "double dot local": "a..b@example.com",
    "trailing dot local": "jane.@example.com",
    "numeric tld": "user@10.0.0",
    "empty": "",
}


@pytest.mark.parametrize("text", list(NEGATIVES.values()), ids=list(NEGATIVES))
def test_hard_negatives(text: str) -> None:
    assert found(text) == []


def test_scp_style_git_url_is_a_login_but_plain_git_address_is_an_email() -> None:
    # Documented choice: `git@host:path` is SSH (a login on a host), not a mailbox; `git@host` alone in prose
    # is indistinguishable from an address and is tagged.
    assert found("git@github.com:org/repo.git") == []
    text = "Mail git@example.org for access."
    assert found(text) == expect(text, (EMAIL, "git@example.org"))


def test_bare_four_part_number_is_an_ip() -> None:
    # Documented choice: a dotted quad with no version word, prefix or suffix is an address.
    text = "Pinned to 2.0.0.1 for now"
    assert found(text) == expect(text, (IP, "2.0.0.1"))


# ------------------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------------------


def test_kinds_select_detectors_and_attribute_names() -> None:
    text = "ops@example.com, 555-123-4567, 10.0.0.1"
    tagger = PiiRegex(PiiConfig(kinds=("ip_address", "EMAIL_ADDRESS")))
    assert tagger.config.kinds == ("ip_address", "email_address")
    assert [k for _, _, k in tagger.find(text)] == [EMAIL, IP]
    assert tagger.attribute_names() == [
        "ip_address",
        "email_address",
        "ip_address_count",
        "email_address_count",
        "doc_count",
        "doc_frac",
    ]


def test_default_attribute_names() -> None:
    assert PiiRegex().attribute_names() == [
        "email_address",
        "phone_number",
        "ip_address",
        "email_address_count",
        "phone_number_count",
        "ip_address_count",
        "doc_count",
        "doc_frac",
    ]
    assert set(PII_REPLACEMENTS) == set(PII_KINDS)
    assert set(DOLMA_FAST_V2_ATTRIBUTES.values()) <= set(PiiRegex().attribute_names())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kinds": ("email_address", "ssn")},
        {"kinds": ()},
        {"phone_min_digits": 0},
        {"phone_min_digits": 9, "phone_max_digits": 8},
    ],
)
def test_bad_config_says_what_is_allowed(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"pii kinds|phone_min_digits"):
        PiiConfig(**kwargs)  # type: ignore[arg-type]


def test_national_phones_can_be_turned_off() -> None:
    text = "Telefon 030 1234567 oder +49 30 1234567"
    assert [t for _, t, _ in found(text)] == ["030 1234567", "+49 30 1234567"]
    assert [t for _, t, _ in found(text, national_phones=False)] == ["+49 30 1234567"]


def test_phone_digit_bounds() -> None:
    text = "London +44 20 7946 0958 and Chicago 555-123-4567"
    assert [t for _, t, _ in found(text, phone_max_digits=10)] == ["555-123-4567"]
    assert [t for _, t, _ in found(text, phone_min_digits=11)] == ["+44 20 7946 0958"]


def test_strict_tld_rejects_code_and_lax_mode_accepts_it() -> None:
    text = "y = x@self.weight"
    assert find_emails(text) == []
    assert find_emails(text, strict_tld=False) == [(4, 17)]
    assert find_emails("mail me@example.museum") == [(5, 22)]


def test_registry_builds_configured_tagger() -> None:
    prefix, tagger = registry.build_tagger("pii:kinds=email_address|ip_address,strict_tld=false")
    assert prefix == "pii"
    assert isinstance(tagger, PiiRegex)
    assert tagger.config.kinds == ("email_address", "ip_address")
    assert tagger.config.strict_tld is False
    assert registry.resolve_name("pii_v1") is PiiRegex
    with pytest.raises(DolmaKitError, match="pii kinds"):
        registry.build_tagger("pii:kinds=ssn")


# ------------------------------------------------------------------------------------------------------
# Document-level scores
# ------------------------------------------------------------------------------------------------------


def scores(text: str) -> dict[str, list[tuple[int, int, float]]]:
    out: dict[str, list[tuple[int, int, float]]] = {}
    for span in PiiRegex().predict(Document(id="d", text=text)):
        out.setdefault(span.type, []).append((span.start, span.end, span.score))
    return out


def test_counts_and_fraction() -> None:
    text = "Mail ops@example.com or sales@example.com, call 555-123-4567."
    n = len(text)
    got = scores(text)
    assert got["email_address"] == [(5, 20, 1.0), (24, 41, 1.0)]
    assert got["phone_number"] == [(48, 60, 1.0)]
    assert "ip_address" not in got  # span attributes only when found; counts always
    assert got["email_address_count"] == [(0, n, 2.0)]
    assert got["phone_number_count"] == [(0, n, 1.0)]
    assert got["ip_address_count"] == [(0, n, 0.0)]
    assert got["doc_count"] == [(0, n, 3.0)]
    assert got["doc_frac"] == [(0, n, pytest.approx((15 + 17 + 12) / n))]


def test_fraction_is_one_when_the_text_is_an_address() -> None:
    assert scores("jane@example.org")["doc_frac"] == [(0, 16, 1.0)]


def test_empty_document_does_not_crash() -> None:
    got = scores("")
    assert got["doc_count"] == [(0, 0, 0.0)]
    assert got["doc_frac"] == [(0, 0, 0.0)]
    assert got["email_address_count"] == [(0, 0, 0.0)]


def test_text_without_pii() -> None:
    got = scores("Nothing to see here.\nReally nothing.")
    assert got["doc_count"][0][2] == 0.0
    assert got["doc_frac"][0][2] == 0.0


# ------------------------------------------------------------------------------------------------------
# Validation and speed guards
# ------------------------------------------------------------------------------------------------------


def test_ipv6_validation_agrees_with_ipaddress() -> None:
    rng = random.Random(7)
    pieces = [
        "0",
        "1",
        "db8",
        "ffff",
        "2001",
        "fe80",
        "12345",
        "g1",
        "",
        "192.0.2.1",
        "256.1.1.1",
        "01.2.3.4",
    ]
    valid = 0
    for _ in range(20_000):
        candidate = ":".join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
        candidate = rng.choice(["", "::"]) + candidate + rng.choice(["", "", "::"])
        try:
            ipaddress.IPv6Address(candidate)
            expected = True
        except ValueError:
            expected = False
        assert (_VALID_IPV6.fullmatch(candidate) is not None) == expected, candidate
        valid += expected
    assert valid > 500  # the sample really exercises valid forms


def test_ipv4_octet_bounds() -> None:
    assert find_ip_addresses("a 255.255.255.255 b") == [(2, 17)]
    assert find_ip_addresses("a 0.0.0.0 b") == [(2, 9)]
    assert find_ip_addresses("a 255.255.255.256 b") == []
    assert find_ip_addresses("a 300.1.1.1 b") == []


@pytest.mark.parametrize(
    "text",
    [
        "@" * 100_000,
        "a@" * 50_000,
        "a." * 50_000 + "@example.com",
        "1 " * 50_000,
        "1." * 50_000,
        "+1 " * 30_000,
        "(555) " * 20_000,
        ":" * 100_000,
        "1:" * 50_000,
        "ab:" * 30_000,
        "?" * 100_000,
        "0" * 100_000,
    ],
    ids=lambda t: repr(t[:6]),
)
def test_pathological_inputs_stay_linear(text: str) -> None:
    start = time.perf_counter()
    PiiRegex().predict(Document(id="d", text=text))
    assert time.perf_counter() - start < 2.0


def test_public_finders_return_sorted_non_overlapping_spans() -> None:
    text = "x ::ffff:192.0.2.1 y 10.0.0.1 z (555) 123-4567 w jane@example.org"
    for spans in (find_ip_addresses(text), find_phone_numbers(text), find_emails(text)):
        assert spans == sorted(spans)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert [text[s:e] for s, e in find_ip_addresses(text)] == ["::ffff:192.0.2.1", "10.0.0.1"]


def test_special_use_tlds_are_addresses() -> None:
    """RFC 2606 / 6761 domains (documentation, test data) must be masked like real ones."""
    from dolma_kit.taggers.pii import find_emails

    text = "Write to orders@millstone-bakery.example or qa@build.test."
    assert [text[s:e] for s, e in find_emails(text)] == ["orders@millstone-bakery.example", "qa@build.test"]
