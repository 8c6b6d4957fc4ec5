"""Attribute names in filters: what a user writes (`gopher.pass`, `lid.en`) → the one full name it means.

Full names are `<experiment>__<tagger>__<name>`; recipes would be unreadable with them, and a short name that
silently matched the wrong attribute would be worse than none. So a name resolves to exactly one attribute the
stream's experiments can write, or fails with the candidates (ambiguous) or the closest names (unknown).
"""

from __future__ import annotations

import re


class Resolver:
    """Maps the names a user writes to full attribute names, exactly one or an error that says why.

    A dotted name matches the full names whose `__`-separated parts end with its parts (`pass`,
    `gopher.pass`, `demo.gopher.pass` all match `demo__gopher__pass`); a tagger part also matches its
    versioned form (`gopher` ↔ `gopher_v1`). An alias replaces the first part (`lid` → `demo.ft_lang_id`).
    """

    def __init__(self, names: set[str] | list[str], aliases: dict[str, str] | None = None) -> None:
        self.names = set(names)
        self.aliases = dict(aliases or {})
        self._parts = {name: tuple(name.split("__")) for name in self.names}

    def resolve(self, ref: str) -> tuple[str | None, str]:
        """(full name, "") or (None, the reason it is not one)."""
        if ref in self.names:
            return ref, ""
        parts = tuple(p for p in re.split(r"__|\.", ref) if p)
        if parts and parts[0] in self.aliases:
            parts = tuple(p for p in re.split(r"__|\.", self.aliases[parts[0]]) if p) + parts[1:]
        found = self._match(parts, versioned=False) or self._match(parts, versioned=True)
        if len(found) == 1:
            return found[0], ""
        if found:
            shown = ", ".join(_dotted(n) for n in found[:6])
            more = f" and {len(found) - 6} more" if len(found) > 6 else ""
            return None, f"'{ref}' is ambiguous: {shown}{more}; write more of the name or declare an alias"
        import difflib  # only for the error message: every mix worker imports this module

        close = difflib.get_close_matches(ref, sorted(_dotted(n) for n in self.names), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return None, f"unknown attribute '{ref}'{hint}"

    def _match(self, parts: tuple[str, ...], *, versioned: bool) -> list[str]:
        n = len(parts)
        out = []
        for name, have in self._parts.items():
            if len(have) < n:
                continue
            tail = have[-n:]
            if versioned:
                tail = tuple(re.sub(r"_v\d+$", "", p) for p in tail)
                want = tuple(re.sub(r"_v\d+$", "", p) for p in parts)
            else:
                want = parts
            if tail == want:
                out.append(name)
        return sorted(out)


def _dotted(name: str) -> str:
    return name.replace("__", ".")
