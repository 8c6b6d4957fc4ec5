"""PII taggers: email addresses, phone numbers and IP addresses, as spans that cover the address only.

`mix` later replaces each span with its `PII_REPLACEMENTS` token, so a span must never include the
brackets, punctuation or newline around an address (Dolma's email span does, and masking then glues
lines together). Precision matters as much as recall: a masked date or version number damages the
text, so each kind is matched by its structure and then validated (octets ≤ 255, IPv6 forms exactly as
`ipaddress` accepts them, known top-level domains, phone digit counts) rather than by loose patterns.

Speed: a regex that starts with a character class is tried at every position (5–30 ns a character),
one that starts with a literal is skipped along at memchr speed. So emails are found from each "@",
IPv4 from ".d.d.d", IPv6 from "::" or ":h:h:", and phone numbers only inside runs of digits and phone
punctuation found on a byte skeleton of the text; prose costs a few C-speed scans. See docs/pii.md for
what each kind matches, the known false positives/negatives, and the differences
from Dolma 1.2.1's `pii_regex_with_counts_fast_v2`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from dolma_kit.documents import Document
from dolma_kit.taggers.base import Span, Tagger, TaggerConfig, whole_document
from dolma_kit.taggers.registry import register_tagger

EMAIL_ADDRESS = "email_address"
PHONE_NUMBER = "phone_number"
IP_ADDRESS = "ip_address"
PII_KINDS: tuple[str, ...] = (EMAIL_ADDRESS, PHONE_NUMBER, IP_ADDRESS)

#: Attribute name → the token `mix` writes in place of the span (Dolma/OLMo special tokens).
PII_REPLACEMENTS: Mapping[str, str] = MappingProxyType(
    {
        EMAIL_ADDRESS: "|||EMAIL_ADDRESS|||",
        PHONE_NUMBER: "|||PHONE_NUMBER|||",
        IP_ADDRESS: "|||IP_ADDRESS|||",
    }
)

#: Dolma 1.2.1 `pii_regex_with_counts_fast_v2` span type → our attribute name, for side-by-side runs.
#: Dolma writes them as `<experiment>__pii_regex_with_counts_fast_v2__<type>`; its `doc_frac` differs in
#: meaning (see docs/pii.md), and it has no per-kind counts.
DOLMA_FAST_V2_ATTRIBUTES: Mapping[str, str] = MappingProxyType(
    {
        "EMAIL_ADDRESS": EMAIL_ADDRESS,
        "PHONE_NUMBER": PHONE_NUMBER,
        "IP_ADDRESS": IP_ADDRESS,
        "doc_count": "doc_count",
        "doc_frac": "doc_frac",
    }
)

# When spans of two kinds overlap, the earlier kind in this order wins (an email outranks a phone
# number that happens to be its local part).
_PRIORITY = {EMAIL_ADDRESS: 0, IP_ADDRESS: 1, PHONE_NUMBER: 2}

# ---------------------------------------------------------------------------------------------------
# Email addresses
# ---------------------------------------------------------------------------------------------------

# Letters allowed in addresses besides ASCII: Latin-1 and Latin Extended-A/B letters (no × ÷) and
# Cyrillic, for addresses like info@müller-bau.de or иван@почта.рф. CJK is left out on purpose:
# CJK text often glues words to an address without a space, and the span must stop at the address.
_WIDE_LETTERS = "À-ÖØ-öø-ɏЀ-ӿ"
_ALNUM = "A-Za-z0-9" + _WIDE_LETTERS
_LOCAL_CHAR = f"[{_ALNUM}_+\\-]"
_LOCAL_MAX = 64  # RFC 5321 limit on the local part

# The local part read backwards from the "@" (the same shape both ways: no leading, trailing or
# doubled dots). Matching backwards from each "@" avoids trying a match at every letter of the text.
_LOCAL_REVERSED = re.compile(f"{_LOCAL_CHAR}+(?:\\.{_LOCAL_CHAR}+)*")

# A local part glued to one of these is not an address: `%s@%s` format strings, `/pkg@1.2.3` npm
# specs, `https://user@host` URL logins, `$USER@host` shell variables, `a..b@` runs.
_NOT_BEFORE_LOCAL = frozenset("./%\\@$")

_EMAIL_DOMAIN = re.compile(
    rf"""
    @
    (?P<domain>
        (?:[{_ALNUM}](?:[{_ALNUM}\-]{{0,61}}[{_ALNUM}])?\.)+     # labels, each followed by a dot
        (?P<tld>[A-Za-z{_WIDE_LETTERS}]{{2,63}}|xn--[A-Za-z0-9\-]{{1,59}})
    )
    (?!
        [{_ALNUM}_\-@(\[]       # the name goes on, or a call/index: x@W.transpose(), a@b.shape[0]
      | \.[{_ALNUM}]            # more labels that failed to parse
      | :\S                     # scp-style `git@github.com:org/repo.git`: a login, not a mailbox
    )
    """,
    re.VERBOSE,
)

# Generic TLDs seen in email addresses. Any two-letter ASCII TLD is taken as a country code; with
# `strict_tld=False` every alphabetic TLD is accepted. The list exists to reject code such as
# `x@self.weight` or `a@b.sum`, which are matrix products, not addresses. The special-use TLDs of
# RFC 2606 / RFC 6761 (`example`, `test`, `invalid`, `localhost`) are in it: documentation and test data
# use them for addresses that must be masked like real ones.
_GENERIC_TLD_NAMES = """
    com net org edu gov mil int info biz name pro mobi aero coop museum jobs travel tel asia cat post
    app dev tech online site store shop blog cloud email mail xyz top club live news world life today
    space website web company agency group solutions digital media network systems services academy
    center centre studio design art law legal health bank insurance church family global international
    consulting marketing software support team works zone school university college education
    foundation fund finance financial capital partners ventures energy science engineering technology
    photography photo photos gallery events expert guru ninja rocks social tools training host hosting
    page link click work one plus icu vip ltd llc inc gmbh earth eco green land city town place clinic
    dental care doctor hospital fitness yoga coffee restaurant cafe bar pub wine beer farm garden house
    homes realestate properties estate rentals immo build builders construction repair berlin london
    paris nyc tokyo wien hamburg koeln cologne bayern swiss quebec scot wales cymru eus gal bzh
    amsterdam brussels vlaanderen ruhr nrw saarland moscow africa
    рф рус бел укр срб мкд қаз мон орг ком сайт онлайн
    example test invalid localhost
"""
_GENERIC_TLDS = frozenset(_GENERIC_TLD_NAMES.split())


def _known_tld(tld: str) -> bool:
    tld = tld.lower()
    return tld in _GENERIC_TLDS or tld.startswith("xn--") or (len(tld) == 2 and tld.isascii())


def find_emails(text: str, *, strict_tld: bool = True) -> list[tuple[int, int]]:
    """`[start, end)` of every email address in `text`, the address only.

    Each "@" is a candidate: the domain is matched forwards from it and the local part backwards, so
    the cost is one C-speed search for "@" plus a little work per "@".
    """
    if "@" not in text:
        return []
    spans: list[tuple[int, int]] = []
    for m in _EMAIL_DOMAIN.finditer(text):
        at = m.start()
        lo = max(0, at - _LOCAL_MAX - 1)
        local = _LOCAL_REVERSED.match(text[lo:at][::-1])
        if local is None or local.end() > _LOCAL_MAX:
            continue
        start = at - local.end()
        if start > 0 and text[start - 1] in _NOT_BEFORE_LOCAL:
            continue
        if len(m.group("domain")) > 253 or (strict_tld and not _known_tld(m.group("tld"))):
            continue
        spans.append((start, m.end()))
    return spans


# ---------------------------------------------------------------------------------------------------
# Context: the word just before a candidate
# ---------------------------------------------------------------------------------------------------

# Read backwards (on the reversed text before a candidate): separators, an optional "-10"/"-13" (as in
# ISBN-13), then the word. Matching at the start of a reversed slice costs one short match, where a
# forward search for "word\Z" would try every position of the window.
_WORD_BEFORE_REVERSED = re.compile(r"[\s.:#\-]*(?:31|01)?[\s.:#\-]*([A-Za-z§]+)")


def _word_before(text: str, start: int) -> str:
    """The lower-cased word just before `start`, skipping spaces and `.:#-` (`ISBN-13: ` gives `isbn`)."""
    m = _WORD_BEFORE_REVERSED.match(text[max(0, start - 24) : start][::-1])
    return m.group(1)[::-1].lower() if m else ""


# ---------------------------------------------------------------------------------------------------
# IP addresses
# ---------------------------------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"  # 0–255, no leading zeros
_IPV4 = re.compile(
    rf"""
    (?<![0-9A-Za-z_.])                  # not inside a longer dotted number or a name (v2.0.0.1)
    {_OCTET}(?:\.{_OCTET}){{3}}
    (?![0-9A-Za-z_]                     # 1.2.3.4b
      | \.[0-9]                         # 1.3.6.1.4 (OIDs, five-part versions)
      | -[A-Za-z] | \+[0-9A-Za-z])      # 2.0.0.1-beta, 1.2.3.4+build: versions
    """,
    re.VERBOSE,
)
# Any dotted quad is a valid IPv4 address, so four-part numbers are told apart by the word before them.
_NUMBERING_WORDS = frozenset(
    {"v", "ver", "version", "release", "build", "rev", "revision", "section", "sec", "chapter", "ch"}
    | {"clause", "art", "article", "figure", "fig", "table", "tab", "step", "rule", "§"}
)
# The last three octets of a dotted quad; the leading "." lets the search skip to each "." at C speed,
# and prose decimals (3.5, 1.2.3) never get as far as Python.
_DOTTED_TAIL = re.compile(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")

_HEX_COLON_RUN = re.compile(r"[0-9A-Fa-f:]{0,40}")  # matched on the reversed text before a trigger
_HAS_DIGIT = re.compile(r"[0-9]")
# Every IPv6 address has "::" or three colons in a row of short hex groups; times (12:30:45) do not.
# Written with a literal ":" first, so the search skips to each ":" at C speed.
_COLON_TRIGGER = re.compile(r":(?::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:)")


def _valid_ipv6_pattern() -> re.Pattern[str]:
    """RFC 4291 text forms, as `ipaddress.IPv6Address` accepts them (the tests check the two agree),
    at regex speed: `ipaddress` takes ~5 µs an address. One alternative per count of groups left of
    "::"; an IPv4 tail counts as two groups, and "::" stands for at least one."""
    hex4 = "[0-9A-Fa-f]{1,4}"
    ipv4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
    forms = [rf"(?:{hex4}:){{7}}{hex4}", rf"(?:{hex4}:){{6}}{ipv4}"]
    for left in range(8):
        room = 7 - left  # groups that may follow "::"
        head = rf"(?:{hex4}:){{{left - 1}}}{hex4}" if left else ""
        tails = [rf"{hex4}(?::{hex4}){{0,{room - 1}}}"] if room else []
        if room >= 2:
            tails.append(rf"(?:{hex4}:){{0,{room - 2}}}{ipv4}")
        tail = f"(?:{'|'.join(tails)})?" if tails else ""
        forms.append(f"{head}::{tail}")
    return re.compile("|".join(f"(?:{form})" for form in forms))


_VALID_IPV6 = _valid_ipv6_pattern()
_IPV6 = re.compile(
    r"""
    (?<![0-9A-Za-z_:.])                 # std::vector, Foo::Bar, 12:30:45.1 start inside a name
    [0-9A-Fa-f:]{2,39}
    (?:(?<=:)(?:[0-9]{1,3}\.){3}[0-9]{1,3})?   # an embedded IPv4 tail: ::ffff:192.0.2.1
    (?![0-9A-Za-z_:]|\.[0-9])
    """,
    re.VERBOSE,
)


def _ipv4_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    done = 0  # triggers before this index belong to an address already looked at
    for trigger in _DOTTED_TAIL.finditer(text):
        dot = trigger.start()
        if dot < done:
            continue
        start = dot
        while start > 0 and dot - start < 3 and text[start - 1].isdigit():
            start -= 1
        if start == dot:
            continue
        m = _IPV4.match(text, start)
        if m is None:
            continue
        done = m.end()
        if _word_before(text, start) not in _NUMBERING_WORDS:
            spans.append(m.span())
    return spans


def _ipv6_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    done = 0
    for trigger in _COLON_TRIGGER.finditer(text):
        colon = trigger.start()
        if colon < done:
            continue
        back = _HEX_COLON_RUN.match(text[max(0, colon - 41) : colon][::-1])
        start = colon - back.end() if back else colon
        m = _IPV6.match(text, start)
        if m is None:
            continue
        done = m.end()
        candidate = m.group()
        if candidate.endswith(":") and not candidate.endswith("::"):
            candidate = candidate[:-1]  # "fe80::1: link down": the colon is prose
        if _HAS_DIGIT.search(candidate) is None:
            continue  # a::b, dead::beef, `::` in code: names far more often than addresses
        if _VALID_IPV6.fullmatch(candidate) is None:
            continue  # MAC addresses (00:1A:2B:3C:4D:5E), nine groups, two "::"
        spans.append((start, start + len(candidate)))
    return spans


def find_ip_addresses(text: str) -> list[tuple[int, int]]:
    """`[start, end)` of every IPv4 and IPv6 address, without brackets, ports, prefixes or zone ids."""
    v4 = _ipv4_spans(text) if "." in text else []
    v6 = _ipv6_spans(text) if ":" in text else []
    if not v6:
        return v4
    # the IPv4 tail of ::ffff:192.0.2.1 is part of the IPv6 address, not a second address
    v4 = [(s, e) for s, e in v4 if not any(s < e6 and s6 < e for s6, e6 in v6)]
    return sorted(v4 + v6)


# ---------------------------------------------------------------------------------------------------
# Phone numbers
# ---------------------------------------------------------------------------------------------------

# Stage one finds runs of seven or more digits and phone punctuation; stage two runs the precise,
# slower pattern only inside those runs, so prose without such runs never reaches it. Stage one works on a
# byte "skeleton" of the text: latin-1 with "?" for anything else keeps one byte per character (offsets
# stay valid), and a translation table maps digits, "+" and "(" to "0" and the other phone punctuation to
# ".". The run pattern then starts with a literal, which `re` finds at memchr speed; a character class
# first (`[+(0-9]`) costs about 6 ns a character on str, three times the whole skeleton path.
_SPACES = " \u00a0\u202f"  # space, no-break space, narrow no-break space (French digit groups)
_SKELETON = bytearray(b"_" * 256)
_SKELETON[ord("0") : ord("9") + 1] = b"0" * 10
for _byte in b"+(":
    _SKELETON[_byte] = ord("0")
for _byte in b")-./ \xa0":
    _SKELETON[_byte] = ord(".")
_SKELETON_TABLE = bytes(_SKELETON)
del _SKELETON, _byte
_PHONE_RUN = re.compile(rb"0[0.]{6,}")


def _phone_runs(text: str) -> list[tuple[int, int]]:
    """`[start, end)` of each maximal run of a digit, `+` or `(`, then six or more digits or `()+-./` or spaces."""
    if "\u202f" in text:  # the one phone separator outside latin-1; same length after the swap
        text = text.replace("\u202f", " ")
    skeleton = text.encode("latin-1", "replace").translate(_SKELETON_TABLE)
    return [m.span() for m in _PHONE_RUN.finditer(skeleton)]


_PHONE = re.compile(
    rf"""
    (?<![0-9A-Za-z_@$€£¥#%&+\-/\\])     # glued to a word, a number, a price or a path
    (?<![0-9][.,:])                     # the tail of 1.5 / 1,5 / 12:30
    (?<![0-9][{_SPACES}])               # one group of a longer digit sequence: 10 200 300 4000
    (?:
      (?P<nanp>                         # North American: (555) 123-4567, +1 555.123.4567
        (?:\+?1[ .\-]?)?
        (?:\([2-9][0-9]{{2}}\)[ ]?|[2-9][0-9]{{2}}(?P<sep>[ .\-]))
        [0-9]{{3}}
        (?(sep)(?P=sep)|[ .\-])         # the same separator twice: 555-123-4567, not 555-123 4567
        [0-9]{{4}}
      )
    | (?P<intl>                         # +44 20 7946 0958, +49 (0)30 1234567, +14155550123, 0049 30 1234567
        \+[1-9][0-9]{{6,14}}
      | (?:\+|00)[1-9][0-9]{{0,2}}
        (?:[{_SPACES}.\-]?\([0-9]{{1,4}}\))?
        [{_SPACES}.\-/]?[0-9]{{1,4}}
        (?:[{_SPACES}.\-][0-9]{{2,8}}){{1,5}}
      )
    | (?P<national>                     # with a trunk 0: 030 1234567, (030) 1234567, 01 23 45 67 89
        0[1-9](?P<pair>[{_SPACES}.\-])[0-9]{{2}}(?:(?P=pair)[0-9]{{2}}){{3}}
      | (?:\(0[1-9][0-9]{{1,4}}\)[ ]?|0[1-9][0-9]{{1,4}}(?:[{_SPACES}.\-]|[ ]?/[ ]?))
        [0-9]{{2,8}}(?:[{_SPACES}.\-][0-9]{{2,8}}){{0,3}}
      )
    )
    (?![0-9A-Za-z_@%€$£¥]|[.,:\-/][0-9])
    """,
    re.VERBOSE,
)
_DIGITS = re.compile(r"[0-9]+")
# Identifiers that can look like phone numbers: ISBN 0-306-40615-2, ISSN 0317-8471, EAN codes.
_IDENTIFIER_WORDS = frozenset({"isbn", "issn", "doi", "ean", "upc", "gtin"})
_NATIONAL_MIN_DIGITS = 9  # trunk-prefixed numbers: 089 123456 is the shortest common form


def find_phone_numbers(
    text: str, *, min_digits: int = 7, max_digits: int = 15, national: bool = True
) -> list[tuple[int, int]]:
    """`[start, end)` of every phone number: the digits, separators and `+`/parentheses of the number.

    Digit counts include the country code. International numbers whose groups after the country code
    are all three digits long (`+1 234 567`) read as thousands and are skipped.
    """
    spans: list[tuple[int, int]] = []
    for pos, run_end in _phone_runs(text):
        end = min(len(text), run_end + 2)  # +2: the end lookahead reads two characters
        while (m := _PHONE.search(text, pos, end)) is not None:
            pos = m.end()
            kind = m.lastgroup
            if kind == "national" and not national:
                continue
            phone = m.group()
            groups = _DIGITS.findall(phone[2:] if phone.startswith("00") else phone)  # 00 = "+"
            digits = sum(map(len, groups))
            low = max(min_digits, _NATIONAL_MIN_DIGITS) if kind == "national" else min_digits
            if not low <= digits <= max_digits:
                continue
            if kind == "intl" and len(groups) >= 3 and all(len(g) == 3 for g in groups[1:]):
                continue
            if _word_before(text, m.start()) in _IDENTIFIER_WORDS:
                continue
            spans.append(m.span())
    return spans


# ---------------------------------------------------------------------------------------------------
# The tagger
# ---------------------------------------------------------------------------------------------------


def _drop_overlaps(found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Keep non-overlapping spans: leftmost first, then longest, then by kind priority."""
    found.sort(key=lambda s: (s[0], s[0] - s[1], _PRIORITY[s[2]]))
    kept: list[tuple[int, int, str]] = []
    end = 0
    for span in found:
        if span[0] >= end:
            kept.append(span)
            end = span[1]
    return kept


@dataclass(kw_only=True)
class PiiConfig(TaggerConfig):
    """Options of the regex PII tagger (`pii:kinds=email_address|ip_address,strict_tld=false`)."""

    kinds: tuple[str, ...] = PII_KINDS
    """Kinds to detect, any of email_address, phone_number, ip_address (Dolma's EMAIL_ADDRESS etc. too)."""

    strict_tld: bool = True
    """Emails need a known top-level domain (any two-letter one, or a listed generic one), which rejects
    code such as `x@self.weight`; false accepts any alphabetic TLD (more recall, more false positives)."""

    phone_min_digits: int = 7
    """Fewest digits (country code included) for a phone number; trunk-0 national forms need at least 9."""

    phone_max_digits: int = 15
    """Most digits for a phone number (E.164 allows 15); longer digit sequences are card or account numbers."""

    national_phones: bool = True
    """Also match trunk-prefixed national formats (030 1234567, 020 7946 0958, 01 23 45 67 89), which
    European text uses more than +-prefixed ones; they cost some false positives (part numbers)."""

    def __post_init__(self) -> None:
        kinds = tuple(dict.fromkeys(k.strip().lower() for k in self.kinds))
        unknown = [k for k in kinds if k not in PII_KINDS]
        if unknown or not kinds:
            raise ValueError(
                f"pii kinds must be one or more of {', '.join(PII_KINDS)} (joined with |), got {self.kinds!r}"
            )
        self.kinds = kinds
        if not 1 <= self.phone_min_digits <= self.phone_max_digits:
            raise ValueError(
                f"need 1 <= phone_min_digits <= phone_max_digits, got {self.phone_min_digits} and "
                f"{self.phone_max_digits}"
            )


@register_tagger("pii_v1", alias="pii")
class PiiRegex(Tagger):
    """Email addresses, phone numbers and IP addresses as spans, with counts and a covered fraction.

    Attributes: one span attribute per enabled kind (`email_address`, `phone_number`, `ip_address`,
    score 1.0, covering the address only); `<kind>_count` per enabled kind and `doc_count` (all kinds)
    as document-level counts; `doc_frac`, the fraction of the text's characters inside PII spans,
    always in [0, 1] (0 for an empty text).
    """

    Config = PiiConfig
    config: PiiConfig

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping `(start, end, kind)` for the enabled kinds, in text order."""
        cfg = self.config
        found: list[tuple[int, int, str]] = []
        if EMAIL_ADDRESS in cfg.kinds:
            found.extend((s, e, EMAIL_ADDRESS) for s, e in find_emails(text, strict_tld=cfg.strict_tld))
        if IP_ADDRESS in cfg.kinds:
            found.extend((s, e, IP_ADDRESS) for s, e in find_ip_addresses(text))
        if PHONE_NUMBER in cfg.kinds:
            phones = find_phone_numbers(
                text,
                min_digits=cfg.phone_min_digits,
                max_digits=cfg.phone_max_digits,
                national=cfg.national_phones,
            )
            found.extend((s, e, PHONE_NUMBER) for s, e in phones)
        return _drop_overlaps(found) if len(found) > 1 else found

    def predict(self, doc: Document) -> list[Span]:
        found = self.find(doc.text)
        spans = [Span(s, e, kind) for s, e, kind in found]
        counts = dict.fromkeys(self.config.kinds, 0)
        covered = 0
        for s, e, kind in found:
            counts[kind] += 1
            covered += e - s
        spans.extend(whole_document(doc, f"{kind}_count", n) for kind, n in counts.items())
        spans.append(whole_document(doc, "doc_count", len(found)))
        spans.append(whole_document(doc, "doc_frac", covered / len(doc.text) if doc.text else 0.0))
        return spans

    def attribute_names(self) -> list[str]:
        kinds = list(self.config.kinds)
        return [*kinds, *(f"{k}_count" for k in kinds), "doc_count", "doc_frac"]
