"""Domains from document URLs, and a bounded counter that keeps per-shard domain counts mergeable.

The registered domain is found by simple host parsing, with no network and no Public Suffix List download: the
last two labels of the host, or the last three when the second-to-last label is a common second-level
registry label (`co.uk`, `com.au`, `ac.jp`, …). This is exact for most of the web and wrong for rare
multi-label suffixes (`blogspot.co.uk` subdomains, private suffixes such as `github.io` users), where it
groups by the shared suffix owner. IP hosts are kept whole.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: Second-level labels under which country-code registries sell names (`example.co.uk`).
SECOND_LEVEL = frozenset(
    [
        "ac",
        "co",
        "com",
        "edu",
        "gov",
        "net",
        "org",
        "mil",
        "nic",
        "ltd",
        "plc",
        "sch",
        "nhs",
        "police",
        "gob",
        "gouv",
        "or",
        "ne",
        "go",
        "lg",
        "ed",
    ]
)


_NETLOC = re.compile(r"^\s*(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//([^/?#\s]*)")


def registered_domain(url: str) -> str | None:
    """`https://www.news.bbc.co.uk/x` → `bbc.co.uk`; None for a string with no host.

    The host is cut out with one regex (urllib's `urlsplit` costs ~50 µs a URL), and hosts are cached: a
    corpus has far fewer hosts than URLs.
    """
    m = _NETLOC.match(url if "//" in url else "//" + url.strip())
    if m is None:
        return None
    netloc = m.group(1).rpartition("@")[2]
    if netloc.startswith("["):  # [IPv6]:port
        host = netloc[1 : netloc.find("]")] if "]" in netloc else ""
    else:
        host = netloc.partition(":")[0]
    return _domain_of_host(host.lower().rstrip("."))


@functools.lru_cache(maxsize=1 << 16)
def _domain_of_host(host: str) -> str | None:
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = [label for label in host.split(".") if label]
    if labels[:1] == ["www"]:
        labels = labels[1:]
    if len(labels) < 2:
        return None
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


@dataclass(slots=True)
class DomainCounter:
    """Exact counts until more than `2 * capacity` distinct domains, then pruned to the top `capacity`.

    Pruning keeps memory flat on shards with millions of hosts. It makes counts lower bounds: a domain's true
    count exceeds its reported count by at most `error_bound` (the sum, over every pruning, of the largest
    count dropped), and a domain whose true count is above `error_bound` is never missing from the top list.
    `approximate` says whether any pruning happened; with fewer distinct domains the counts are exact.
    """

    capacity: int = 10_000
    counts: dict[str, int] = field(default_factory=dict)
    error_bound: int = 0
    approximate: bool = False

    def add(self, domain: str, n: int = 1) -> None:
        self.counts[domain] = self.counts.get(domain, 0) + n
        if len(self.counts) > 2 * self.capacity:
            self._prune()

    def update(self, items: Iterable[tuple[str, int]]) -> None:
        for domain, n in items:
            self.add(domain, n)

    def _prune(self) -> None:
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        dropped = ranked[self.capacity :]
        if dropped:
            self.error_bound += dropped[0][1]
            self.approximate = True
        self.counts = dict(ranked[: self.capacity])

    def merge(self, other: DomainCounter | dict[str, Any]) -> None:
        """Add another counter (or its `to_json`); error bounds add up."""
        data = other.to_json() if isinstance(other, DomainCounter) else other
        self.update(data["counts"].items())
        self.error_bound += int(data.get("error_bound", 0))
        self.approximate = self.approximate or bool(data.get("approximate", False))

    def top(self, k: int) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]

    def to_json(self, limit: int | None = None) -> dict[str, Any]:
        """The counts (all, or the top `limit`: `distinct` still counts all), the error bound, and whether
        pruning made counts approximate (listing only the top is not an approximation)."""
        items = self.top(limit) if limit is not None else sorted(self.counts.items())
        return {
            "counts": dict(items),
            "distinct": len(self.counts),
            "error_bound": self.error_bound,
            "approximate": self.approximate,
        }
