"""Examples of what each mix rule removed and let through, with the attribute values that decided: a curator's
answer to "which documents did this rule remove, and why?" (datatrove's exclusion writer, bounded).

Per stream and per rule (each include/exclude filter, sampling, emptying by span replacement; in a Dolma mixer
stream its include/exclude queries and `min_text_length`), `mix` keeps two samples of at most `k` documents:
those the rule removed and those it let through. A document is in a sample when its key
`xxh64(str(id), seed = xxh64("<stream seed>\\0<stream>"))` is among the `k` smallest of the documents the rule
decided (ties: source, id). The key is the same under every rule of the stream: the documents a rule let through
are then mostly the same panel, followed rule after rule (and a shard writes each sampled document once, which
keeps the cost small). Each shard keeps its own `k` smallest (memory O(k) per rule) and writes them in its
manifest (`<output>/_mix/<stream>/<source>/<shard>.json`, key `examples`), atomically, before its `.done` marker;
the end of the run merges the shards' samples by the same key into `<output>/examples.json`. The global `k` smallest are
among the union of each shard's `k` smallest, so the result is the same whatever the sharding, the process count,
the order shards finish in, or a resume.

A sampled document carries its id, source, input file (`shown_path`) and line, the first `TEXT_CHARS`
characters of its text (as read, before span replacement), and the values of the attributes the rule names
(`value_of`). A document that passed a rule also says what happened to it next (`outcome`: kept, or the later
rule that removed it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

from xxhash import xxh64_intdigest

from dolma_kit import storage
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import ShardTask
from dolma_kit.mix import jsonpath
from dolma_kit.mix.dolma_run import NOT_INCLUDED, TOO_SHORT, DolmaRules
from dolma_kit.mix.filters import Node, attributes_of, unparse

EXAMPLES_NAME = "examples.json"
"""The merged examples of the streams writing to one output folder, beside `mix_summary.json`."""
FORMAT = "dolma-kit.mix-examples/1"
DEFAULT_EXAMPLES = 10
"""Per rule and side. The cost is per shard, not per document: on real text in 112-document shards 10 costs
mix ≈ 5% more CPU (20: 6–9%); larger shards cost less."""
TEXT_CHARS = 300
MAX_SPANS = 3
"""Spans shown per attribute value when it has several (the count is always given)."""
TEXT_BYTES = "stripped text bytes"
"""The value `min_text_length` decides on (Dolma counts UTF-8 bytes of the stripped text)."""


@dataclass(frozen=True, kw_only=True)
class ExampleRule:
    """One decision of a stream whose examples are kept: what it is called, as written, and what it reads."""

    name: str
    """The removal reason as the summary counts it (`removed_by`): a rule's name, `include: none matched`, …"""
    kind: str
    """`include`, `exclude`, `sample`, `replace` (a text emptied by span replacement), `min_text_length`."""
    written: str
    """The rule as it runs (names resolved, `filters.unparse`), or the Dolma query as written."""
    attributes: tuple[str, ...] | None = ()
    """Attributes whose values are shown; None: every attribute of the row (a Dolma query read whole)."""
    measure: str = ""
    """A value computed from the document instead (`TEXT_BYTES`)."""


class StreamRules(Protocol):
    """What the driver reads of a stream plan (`mix.stage.StreamPlan`)."""

    name: str
    seed: int
    decisions: tuple[ExampleRule, ...]


def recipe_rules(
    include: tuple[tuple[str, Node], ...],
    exclude: tuple[tuple[str, Node], ...],
    extra: tuple[tuple[str, str, str, tuple[str, ...]], ...],
    not_included: str,
) -> tuple[ExampleRule, ...]:
    """A recipe stream's decisions in the order they are taken: include (any of the filters), each exclude, then
    `extra` (name, kind, as written, attributes): sampling and emptying by replacement, where the stream has them."""
    rules = []
    if include:
        names = set().union(*(attributes_of(node) for _, node in include))
        written = " or ".join(
            f"({unparse(node)})" if len(include) > 1 else unparse(node) for _, node in include
        )
        rules.append(
            ExampleRule(name=not_included, kind="include", written=written, attributes=tuple(sorted(names)))
        )
    for name, node in exclude:
        rules.append(
            ExampleRule(
                name=name,
                kind="exclude",
                written=unparse(node),
                attributes=tuple(sorted(attributes_of(node))),
            )
        )
    rules += [ExampleRule(name=n, kind=k, written=w, attributes=a) for n, k, w, a in extra]
    return tuple(rules)


def dolma_rules(rules: DolmaRules) -> tuple[ExampleRule, ...]:
    """A Dolma mixer stream's decisions: include (any query), each exclude query, then `min_text_length`."""

    def names(queries: list[str]) -> tuple[str, ...] | None:
        if rules.syntax == "jq":
            return None
        found: set[str] = set()
        for query in queries:
            got = jsonpath.parse(query).attribute_names()
            if got is None:
                return None
            found |= got
        return tuple(sorted(found))

    out = []
    if rules.include:
        written = " | ".join(map(str, rules.include))
        out.append(
            ExampleRule(name=NOT_INCLUDED, kind="include", written=written, attributes=names(rules.include))
        )
    for query in map(str, rules.exclude):
        out.append(ExampleRule(name=query, kind="exclude", written=query, attributes=names([query])))
    if rules.min_text_length:
        written = f"stripped text shorter than {rules.min_text_length:,} UTF-8 bytes"
        out.append(ExampleRule(name=TOO_SHORT, kind="min_text_length", written=written, measure=TEXT_BYTES))
    return tuple(out)


def value_of(spans: Any) -> Any:
    """What a sample shows for one attribute: the score of a one-span (document-level) attribute, null when the
    document has none, else the span count and the first `MAX_SPANS` spans (what `count()`/`any()` read)."""
    if spans is None or spans == []:
        return None
    if isinstance(spans, list) and isinstance(spans[0], list) and len(spans[0]) >= 3:  # spans, as rows hold
        if len(spans) == 1:
            return spans[0][2]
        return {"spans": len(spans), "first": spans[:MAX_SPANS]}
    text = _dumps(spans)
    return spans if len(text) <= 200 else text[:200] + "…"


def _values(rule: ExampleRule, obj: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    if rule.measure == TEXT_BYTES:
        text = obj.get("text")
        return {TEXT_BYTES: len(text.strip().encode("utf-8")) if isinstance(text, str) else None}
    names = sorted(attrs) if rule.attributes is None else rule.attributes
    return {name: value_of(attrs.get(name)) for name in names}


def shown_path(path: str) -> str:
    """An input shard as samples name it: below its `documents/` folder (`<source>/<shard>`, as the attribute
    files mirror it), else its folder and name; never where the corpus lies, so moving a corpus (or reading it
    from S3) writes the same examples."""
    marker = "/documents/"
    if marker in "/" + path:
        return ("/" + path).rpartition(marker)[2]
    return "/".join(path.rstrip("/").split("/")[-2:])


_ORDER = itemgetter(0, 1, 2)  # (key, source, id)


class _Sample:
    """The `k` candidates with the smallest (key, source, id): a list cut back to `k` when it reaches 2k, so
    an offer costs one comparison against `bound` unless the document is a candidate."""

    __slots__ = ("bound", "items", "k")

    def __init__(self, k: int) -> None:
        self.k = k
        self.items: list[tuple[int, str, str, Any]] = []
        self.bound = 1 << 64  # keys are < 2**64: everything is a candidate until k are held

    def add(self, key: int, source: str, doc_id: str, payload: Any) -> None:
        self.items.append((key, source, doc_id, payload))
        if len(self.items) >= 2 * self.k:
            self._cut()

    def _cut(self) -> None:
        self.items.sort(key=_ORDER)
        del self.items[self.k :]
        if len(self.items) == self.k:
            self.bound = self.items[-1][0] + 1  # equal keys still enter: ties are decided by (source, id)

    def top(self) -> list[tuple[int, str, str, Any]]:
        self._cut()
        return self.items


def stream_seed(seed: int, stream: str) -> int:
    """The xxh64 seed of a stream's sample keys: `xxh64("<stream seed>\\0<stream>")`."""
    return xxh64_intdigest(f"{seed}\0{stream}".encode())


class ShardExamples:
    """One shard's samples: `decided` is called once per document with the reason it was removed (None: kept)."""

    def __init__(self, plan: StreamRules, k: int, path: str) -> None:
        self.rules = rules = plan.decisions
        self.k = k
        self.path = shown_path(path)
        self.seed = stream_seed(plan.seed, plan.name)
        self.index = {r.name: i for i, r in enumerate(rules)}
        self.removed = [_Sample(k) for _ in rules]
        self.passed = [_Sample(k) for _ in rules]
        self.measured = next((r for r in rules if r.measure), None)
        shown = [r.attributes for r in rules if not r.measure]
        self.names = None if None in shown else tuple(sorted(set().union(*shown)))  # type: ignore[arg-type]
        """Every attribute a rule of the stream shows (None: a Dolma query read whole: all of the row's)."""
        self.bound = 1 << 64
        """The largest bound of any sample: a key at or above it is no candidate anywhere (the fast path)."""

    def decided(
        self,
        obj: dict[str, Any],
        attrs: dict[str, Any],
        line: int,
        text: Any,
        reason: str | None,
        folder_source: str,
    ) -> None:
        """Offer a document to the samples of every rule that decided it: the rules before the one that removed
        it let it through. `text` is the text as read; `folder_source` the source of a document without one.
        (The counts come from the shard's stats: they count the same reasons.)

        A candidate holds the start of its text and the values it shows; its record is built when the shard's
        samples are written, for the `k` that stay: most candidates of a long shard are dropped."""
        doc_id = obj["id"]
        key = xxh64_intdigest(str(doc_id).encode(), self.seed)  # the sample key: the same under every rule
        if key >= self.bound:
            return
        stop = self.index.get(reason, len(self.rules)) if reason is not None else len(self.rules)
        payload = None
        for i in range(min(stop + 1, len(self.rules))):
            sample = self.removed[i] if i == stop else self.passed[i]
            if key < sample.bound:
                if payload is None:
                    source = obj.get("source") or folder_source
                    snippet = text[:TEXT_CHARS] if isinstance(text, str) else ""
                    chars = len(text) if isinstance(text, str) else 0
                    # the values now, not the row: a candidate holds no span lists (less memory, less GC)
                    names = sorted(attrs) if self.names is None else self.names
                    values = {name: value_of(attrs.get(name)) for name in names}
                    if self.measured:  # `min_text_length` reads the final text
                        values.update(_values(self.measured, obj, attrs))
                    payload = (doc_id, source, line, snippet, chars, values, reason)
                items = sample.items
                items.append((key, source, str(doc_id), payload))  # `_Sample.add`, inlined: the hot path
                if len(items) >= 2 * self.k:
                    sample._cut()
                    self.bound = max(s.bound for s in (*self.removed, *self.passed))

    def to_json(self, removed_by: dict[str, int], documents: int) -> dict[str, Any]:
        """The shard's samples, for its manifest (written atomically with it, before the `.done` marker): k, the
        rules, counts, and per sampled document `[key, samples, record]` (samples: `r<i>` removed by rule i,
        `k<i>` let through by it), so a document in several samples is written once. In the manifest, not a
        file of its own: on a small shard one more atomic file costs more than all the sampling."""
        removed = [removed_by.get(r.name, 0) for r in self.rules]
        passed, before = [], documents
        for n in removed:
            before -= n
            passed.append(before)
        lines = []
        chosen: dict[int, tuple[int, tuple[Any, ...], list[str]]] = {}
        for i in range(len(self.rules)):
            for side, sample in (("r", self.removed[i]), ("k", self.passed[i])):
                for key, _, _, payload in sample.top():
                    chosen.setdefault(id(payload), (key, payload, []))[2].append(f"{side}{i}")
        for key, payload, where in sorted(chosen.values(), key=lambda c: (c[0], c[1][1], str(c[1][0]))):
            doc_id, source, line, snippet, chars, values, reason = payload  # values: of every rule's names
            record = {"id": doc_id, "source": source, "file": self.path, "line": line, "text": snippet}
            record.update(chars=chars, values=values, reason=reason)
            lines.append([key, where, record])
        rules = [r.name for r in self.rules]
        return {"k": self.k, "rules": rules, "removed": removed, "kept": passed, "samples": lines}


def _examples_of(manifest: str) -> dict[str, Any] | None:
    """A finished shard's samples (None: its manifest has none, or cannot be read)."""
    data = storage.read_json_object(manifest)
    found = data.get("examples") if data is not None else None
    return found if isinstance(found, dict) else None


def usable(header: dict[str, Any] | None, rules: tuple[ExampleRule, ...], k: int) -> bool:
    """Whether a shard's samples serve a run asking for `k` (a larger k holds the smaller one's samples)."""
    return (
        header is not None
        and isinstance(header.get("k"), int)
        and header["k"] >= k
        and header.get("rules") == [r.name for r in rules]
    )


def stale(manifests: Iterable[str], rules: tuple[ExampleRule, ...], k: int) -> list[str]:
    """The finished shards (by manifest) whose samples cannot serve this run: written without examples, with a
    smaller k or other rules. `mix` redoes them (their outputs come out byte-identical)."""
    return [m for m in manifests if not usable(_examples_of(m), rules, k)]


def _shown(rule: ExampleRule, item: dict[str, Any], removed: bool) -> dict[str, Any]:
    """A merged record as examples.json gives it under one rule: that rule's values; what came next."""
    out = {k: v for k, v in item.items() if k not in ("values", "reason")}
    values = item["values"]
    if rule.measure:
        out["values"] = {rule.measure: values.get(rule.measure)}
    elif rule.attributes is None:
        out["values"] = values
    else:
        out["values"] = {name: values.get(name) for name in rule.attributes}
    if not removed:
        out["outcome"] = "kept" if item["reason"] is None else f"removed: {item['reason']}"
    return out


class Merger:
    """One stream's examples, merged shard by shard (as the end of the run reads each manifest for its counts)
    into the global `k` smallest per rule and side: memory O(k) per rule, whatever the number of shards."""

    def __init__(self, stream: str, seed: int, rules: tuple[ExampleRule, ...], k: int) -> None:
        self.stream, self.seed, self.rules, self.k = stream, seed, rules, k
        self.removed = [0] * len(rules)
        self.passed = [0] * len(rules)
        self.samples = {f"{side}{i}": _Sample(k) for i in range(len(rules)) for side in "rk"}

    def add(self, manifest: str, examples: Any) -> None:
        """A shard's samples (its manifest's `examples`)."""
        if not usable(examples, self.rules, self.k):
            raise DolmaKitError(
                f"{manifest}: no examples for these rules, or fewer than {self.k}; re-run mix with --force"
            )
        samples = self.samples
        try:
            for i in range(len(self.rules)):
                self.removed[i] += examples["removed"][i]
                self.passed[i] += examples["kept"][i]
            for key, where, item in examples["samples"]:
                for w in where:
                    if key < samples[w].bound:
                        samples[w].add(key, item["source"], str(item["id"]), item)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise DolmaKitError(
                f"{manifest}: unreadable examples ({exc!r}); re-run mix with --force"
            ) from None

    def result(self) -> dict[str, Any]:
        out = []
        for i, rule in enumerate(self.rules):
            out.append(
                {
                    "rule": rule.name,
                    "kind": rule.kind,
                    "filter": rule.written,
                    "attributes": None if rule.attributes is None else list(rule.attributes),
                    **({"measure": rule.measure} if rule.measure else {}),
                    "removed": self.removed[i],
                    "kept": self.passed[i],
                    "removed_examples": [_shown(rule, r, True) for *_, r in self.samples[f"r{i}"].top()],
                    "kept_examples": [_shown(rule, r, False) for *_, r in self.samples[f"k{i}"].top()],
                }
            )
        return {"stream": self.stream, "seed": self.seed, "rules": out}


def write_examples(path: str, k: int, streams: list[dict[str, Any]]) -> None:
    """`<output>/examples.json`: the merged examples of every stream writing to that output, one sample a line
    (readable, and written by the C encoder: `indent=` would take the slow one). It names no recipe file and no
    time, so two runs of one recipe write the same bytes (`mix_summary.json` names the recipe)."""
    head = {"format": FORMAT, "examples": k, "text_chars": TEXT_CHARS}
    out = [
        "{" + ", ".join(f"{_dumps(key)}: {_dumps(value)}" for key, value in head.items()) + ',\n "streams": ['
    ]
    for n, stream in enumerate(streams):
        out.append(f'  {{"stream": {_dumps(stream["stream"])}, "seed": {stream["seed"]}, "rules": [')
        for m, rule in enumerate(stream["rules"]):
            fields = [
                f"{_dumps(key)}: {_dumps(value)}" for key, value in rule.items() if "_examples" not in key
            ]
            out.append("   {" + ", ".join(fields) + ",")
            for side in ("removed_examples", "kept_examples"):
                rows = ",\n".join("     " + _dumps(r) for r in rule[side])
                end = "," if side == "removed_examples" else ""
                out.append(f'    "{side}": [\n{rows}\n    ]{end}' if rows else f'    "{side}": []{end}')
            out.append("   }" + ("," if m + 1 < len(stream["rules"]) else ""))
        out.append("  ]}" + ("," if n + 1 < len(streams) else ""))
    out.append(" ]\n}\n")
    storage.write_text(path, "\n".join(out))


def manifest_text(manifest: dict[str, Any]) -> str:
    """A shard manifest as written: indented, its `examples` (if any) one compact line at the end, so the C
    encoder writes them (`indent=` takes the pure-Python one) and the rest stays readable."""
    base = {k: v for k, v in manifest.items() if k != "examples"}
    text = json.dumps(base, indent=1, ensure_ascii=False)
    if "examples" not in manifest:
        return text + "\n"
    return f'{text[:-2]},\n "examples": {_dumps(manifest["examples"])}\n}}\n'


_dumps = json.JSONEncoder(ensure_ascii=False).encode
"""JSON with UTF-8 kept; one encoder for every call (`json.dumps` with options builds one a call)."""


# --------------------------------------------------------------------------------------------- driver


def _manifests(stream: str, tasks: list[ShardTask]) -> list[str]:
    return [t.output for t in tasks if t.key.startswith(stream + "/")]


def redo_stale(plans: Iterable[StreamRules], tasks: list[ShardTask], k: int, *, force: bool = False) -> int:
    """Before a run: unmark the finished shards whose samples cannot serve `k` examples (written with
    `--examples 0`, a smaller N or other rules), so they run again; returns how many (`force` redoes all)."""
    if k < 0:
        raise DolmaKitError(f"--examples {k}: give a number of documents ≥ 0 (0: none)")
    if not k or force:
        return 0
    by_output = {t.output: t for t in tasks}
    redo = 0
    for plan in plans:
        mine = _manifests(plan.name, tasks)
        done = [m for m in mine if plan.decisions and storage.exists(by_output[m].marker)]
        for manifest in stale(done, plan.decisions, k):
            storage.remove(by_output[manifest].marker)
            redo += 1
    return redo


def mergers(plans: Iterable[StreamRules], k: int) -> dict[str, Merger]:
    """A merger per stream that has rules, when examples are asked for (`plans`: the stage's stream plans)."""
    return {p.name: Merger(p.name, p.seed, p.decisions, k) for p in plans if k and p.decisions}


def collect(outputs: dict[str, str], merged: dict[str, Merger], k: int) -> list[str]:
    """After a run: write each output folder's `examples.json` from the merged samples of the streams writing
    there (`outputs`: stream → output folder); with `k` = 0 remove an earlier run's file instead, so no report
    shows examples this run did not make."""
    if not k:
        for output in sorted(set(outputs.values())):
            storage.remove(storage.join(output, EXAMPLES_NAME))
        return []
    written = []
    for output in sorted(set(outputs.values())):
        streams = [m.result() for name, m in merged.items() if outputs[name] == output]
        path = storage.join(output, EXAMPLES_NAME)
        write_examples(path, k, streams)
        written.append(path)
    return written
