"""The report's quality-rule section: which Gopher or C4 rule a document failed, per source.

`gopher.pass == 0` says a document breaks at least one rule, not which: a curator who sees half a corpus go
wants the rule, and the documents a relaxed threshold would rescue. Gopher writes every measure as a
whole-document span, so the rules are recomputed here from the attribute rows with the tagger's own
`failed_rules` under the thresholds that experiment was tagged with (its `attributes_schema.json` records
each tagger's resolved config; without a schema the defaults are used and the page says so). C4 writes its
document flags the same way, and one span per dropped line typed by the line's reason.

Per (experiment, tagger) and source, counts are plain sums (they merge like every other `stats` count):
`checked`, `failed`, `fail:<rule>` (documents failing the rule), `only:<rule>` (failing that rule and no
other: the ones relaxing it would keep), `pass_disagrees` (documents with `pass` = 0 that break no rule under
the recorded thresholds: they were tagged with others; documents that passed are not recomputed, which halves
the cost, unless defaults stand in for a missing schema), and for C4 `lines` (non-blank lines),
`lines:<reason>` and `line_docs:<reason>` (lines dropped for the reason, documents with one). The thresholds
travel in stats.json as text, so the page rebuilds from stats.json alone.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dolma_kit import storage
from dolma_kit.analysis.report_parts import Raw, esc, num, pct, table
from dolma_kit.attributes import SCHEMA_NAME, SpanSummary
from dolma_kit.errors import BadRecordError, DolmaKitError
from dolma_kit.taggers.c4 import DOCUMENT_ATTRIBUTES, LINE_REASONS, C4Config
from dolma_kit.taggers.gopher import MEASURES, GopherConfig, failed_rules

#: registered tagger names whose rules this section breaks down, by family
FAMILIES = {"gopher_v1": "gopher", "c4_v1": "c4"}
#: attribute prefixes taken for those taggers in an experiment without a schema (output of another tool)
_FALLBACK_PREFIXES = {"gopher": "gopher", "gopher_v1": "gopher", "c4": "c4", "c4_v1": "c4"}
#: C4's document-level rules, in the order the page lists them; `no_kept_lines`: every line was dropped
C4_DOCUMENT_RULES = (
    "no_kept_lines",
    "too_few_sentences",
    "has_lorem_ipsum",
    "has_curly_brace",
    "has_bad_word",
)
_C4_FLAGS = tuple(r for r in C4_DOCUMENT_RULES if r in DOCUMENT_ATTRIBUTES)
#: Gopher rules that measure one thing at several sizes: a page that repeats 10-grams repeats 5-grams too, so
#: few documents fail one of them alone; as a family, "only" says what relaxing all its thresholds would keep
GOPHER_FAMILIES = {
    "family:repeated_lines_or_paragraphs": MEASURES[7:11],
    "family:most_common_2_to_4grams": MEASURES[11:14],
    "family:duplicate_5_to_10grams": MEASURES[14:20],
}


@dataclass(frozen=True)
class QualityProducer:
    """One Gopher or C4 tagger of one experiment, with the config its `pass` was computed under."""

    experiment: str
    prefix: str
    family: str
    config: dict[str, Any] = field(default_factory=dict)
    """The tagger's resolved config as the schema records it (empty: the defaults)."""
    recorded: bool = True
    """False when the experiment has no schema and the defaults stand in for the real thresholds."""

    @property
    def key(self) -> str:
        return f"{self.experiment}/{self.prefix}"

    def name(self, attribute: str) -> str:
        return f"{self.experiment}__{self.prefix}__{attribute}"

    def build_config(self) -> GopherConfig | C4Config:
        cls = GopherConfig if self.family == "gopher" else C4Config
        known = {f.name for f in dataclasses.fields(cls)}
        # the schema is JSON: tuples came back as lists; fields a later version added are left at defaults
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.config.items() if k in known}
        return cls(**values)


def quality_producers(root: str, exps: list[str]) -> list[QualityProducer]:
    """The Gopher / C4 taggers of the experiments, from each experiment's `attributes_schema.json`."""
    return [p for exp in exps for p in experiment_producers(storage.join(root, "attributes", exp), exp)]


def experiment_producers(attr_root: str, exp: str) -> list[QualityProducer]:
    """The Gopher / C4 taggers of one experiment whose attributes live at `attr_root`."""
    path = storage.join(attr_root, SCHEMA_NAME)
    if not storage.exists(path):
        return [QualityProducer(exp, p, f, recorded=False) for p, f in _FALLBACK_PREFIXES.items()]
    out = []
    try:
        taggers = json.loads(storage.read_text(path)).get("taggers") or {}
        for prefix, info in sorted(taggers.items()):
            family = FAMILIES.get(str(info.get("tagger"))) if isinstance(info, dict) else None
            if family is not None:
                producer = QualityProducer(exp, prefix, family, dict(info.get("config") or {}))
                producer.build_config()  # thresholds that do not make a config are the schema's fault
                out.append(producer)
    except (ValueError, TypeError, AttributeError) as exc:
        raise DolmaKitError(f"{path}: not an attributes schema `tag` writes ({exc})") from None
    return out


def failed_quality_rules(producer: QualityProducer, attributes: Mapping[str, Any]) -> list[str] | None:
    """The rules one document's attribute row fails for one Gopher / C4 tagger, as the report counts them
    (None: the row lacks that tagger's measures)."""
    if producer.family == "gopher":
        config = producer.build_config()
        assert isinstance(config, GopherConfig)
        return _gopher_failed(attributes, config, {m: producer.name(m) for m in MEASURES})
    names = {n: producer.name(n) for n in ("line_count", "removed_line_fraction", *_C4_FLAGS)}
    return _c4_failed(attributes, names)


def _c4_rules(config: C4Config) -> tuple[str, ...]:
    return tuple(r for r in C4_DOCUMENT_RULES if r != "has_bad_word" or config.bad_words_file)


def thresholds(producer: QualityProducer) -> dict[str, str]:
    """Each rule's threshold in words, from the producer's config: what the page prints beside the counts."""
    c = producer.build_config()
    if isinstance(c, GopherConfig):
        out = {
            "word_count": f"{c.min_words:,}–{c.max_words:,} words",
            "mean_word_length": f"{c.min_mean_word_length:g}–{c.max_mean_word_length:g} characters",
            "symbol_to_word_ratio": f"≤ {c.max_symbol_to_word_ratio:g} # (or …) per word",
            "fraction_of_lines_starting_with_bullet": f"≤ {c.max_bullet_lines_fraction:g}",
            "fraction_of_lines_ending_with_ellipsis": f"≤ {c.max_ellipsis_lines_fraction:g}",
            "fraction_of_words_with_alpha_character": f"≥ {c.min_alpha_words_fraction:g}",
            "required_word_count": f"≥ {c.min_required_words} of {len(c.required_words)} stop words",
            "fraction_of_duplicate_lines": f"≤ {c.max_duplicate_lines_fraction:g}",
            "fraction_of_duplicate_paragraphs": f"≤ {c.max_duplicate_paragraphs_fraction:g}",
            "fraction_of_characters_in_duplicate_lines": f"≤ {c.max_duplicate_line_chars_fraction:g}",
            "fraction_of_characters_in_duplicate_paragraphs": f"≤ {c.max_duplicate_paragraph_chars_fraction:g}",
        }
        ngram = [m for m in MEASURES if m not in out]
        limits = c.max_top_ngram_chars_fraction + c.max_duplicate_ngram_chars_fraction
        out.update({m: f"≤ {limit:g}" for m, limit in zip(ngram, limits, strict=True)})
        out.update({f: f"any of its {len(members)} rules" for f, members in GOPHER_FAMILIES.items()})
        return out
    ends = " ".join(c.terminal_punctuation) + (", or ends with ..." if c.drop_ellipsis_lines else "")
    return {
        "no_kept_lines": "≥ 1 line kept",
        "too_few_sentences": f"≥ {c.min_sentences} sentences kept",
        "has_lorem_ipsum": "no “lorem ipsum”",
        "has_curly_brace": "no “{”",
        "has_bad_word": f"no word of {c.bad_words_file}",
        "line_too_long_word": f"a word > {c.max_word_length:,} characters",
        "line_no_terminal_punct": f"not ending with {ends}",
        "line_too_few_words": f"< {c.min_words_per_line} words",
        "line_javascript": "has “javascript”",
        "line_policy": f"has one of {len(c.policy_phrases)} policy phrases",
    }


def quality_json(producers: list[QualityProducer], seen: set[str]) -> dict[str, Any]:
    """stats.json's `quality` block: per producer that wrote rows, where its thresholds came from and them."""
    out = {}
    for p in producers:
        if p.key not in seen:
            continue
        c = p.build_config()
        out[p.key] = {
            "experiment": p.experiment,
            "prefix": p.prefix,
            "family": p.family,
            "thresholds_from": SCHEMA_NAME if p.recorded else "defaults (the experiment has no schema)",
            "rules": [*MEASURES, *GOPHER_FAMILIES] if isinstance(c, GopherConfig) else list(_c4_rules(c)),
            "line_reasons": [] if isinstance(c, GopherConfig) else list(LINE_REASONS),
            "thresholds": thresholds(p),
        }
    return out


# --------------------------------------------------------------------------------------------- counting


def _add(slot: dict[str, int], key: str, n: int = 1) -> None:
    slot[key] = slot.get(key, 0) + n


def _first(value: Any) -> float | None:
    """The first span's score of an attribute: from its summary, or from its parsed span list."""
    if isinstance(value, SpanSummary):
        return value.first
    return value[0][2] if value else None


def _spans(value: Any) -> int:
    """How many spans an attribute has (a summary's count, or the length of its span list). Not their
    characters: summing C4's ~100 dropped lines a document cost a fifth of `stats`' time."""
    return value.count if isinstance(value, SpanSummary) else len(value)


#: one document's attributes in one experiment, where they come from (file, line), for the rules to read:
#: name → `SpanSummary`, or name → parsed span list (`stats` gives a short line's parsed spans as they are)
QualityRow = tuple[str, Mapping[str, Any], str, int]


class QualityReader:
    """Adds one document's Gopher / C4 attributes to a source's `quality` counts (see the module docstring)."""

    def __init__(self, producers: tuple[QualityProducer, ...]) -> None:
        self._by_exp: dict[str, list[tuple[QualityProducer, Any, dict[str, str]]]] = {}
        self._names: set[str] = set()
        for p in producers:
            config = p.build_config()
            attrs = MEASURES if p.family == "gopher" else (*LINE_REASONS, *DOCUMENT_ATTRIBUTES)
            names = {a: p.name(a) for a in (*attrs, "pass")}
            self._names.update(names.values())
            self._by_exp.setdefault(p.experiment, []).append((p, config, names))

    def wants(self, name: str) -> bool:
        return name in self._names

    def count(self, into: dict[str, dict[str, int]], rows: list[QualityRow]) -> None:
        """Add the documents' rule counts; a span list that is not [start, end, score] lists is a bad record."""
        for exp, attributes, path, line in rows:
            for producer, config, names in self._by_exp.get(exp, ()):
                if names["pass"] not in attributes:
                    continue  # not this tagger's row (a fallback prefix that was never written)
                try:
                    self._count(into.setdefault(producer.key, {}), attributes, producer, config, names)
                except (TypeError, ValueError, IndexError, KeyError):
                    raise BadRecordError(
                        path, line, f"{producer.key}: an attribute's spans are not [start, end, score] lists"
                    ) from None

    @staticmethod
    def _count(
        slot: dict[str, int],
        attributes: Mapping[str, Any],
        producer: QualityProducer,
        config: Any,
        names: dict[str, str],
    ) -> None:
        slot["checked"] = slot.get("checked", 0) + 1
        gopher = isinstance(config, GopherConfig)
        if not gopher:
            _count_c4_lines(slot, attributes, names)
        passed = _first(attributes[names["pass"]])
        passed = passed is not None and passed >= 0.5
        if passed and producer.recorded:
            return  # `pass` was computed under these very thresholds: no rule fails (half the work saved)
        failed = _gopher_failed(attributes, config, names) if gopher else _c4_failed(attributes, names)
        if failed is None:
            _add(slot, "unmeasured")  # a measure is missing: the rules cannot be recomputed
            return
        if passed == bool(failed):
            _add(slot, "pass_disagrees")
        if failed:
            _add(slot, "failed")
            for rule in failed:
                _add(slot, f"fail:{rule}")
            if len(failed) == 1:
                _add(slot, f"only:{failed[0]}")
            if gopher:
                _count_families(slot, failed)


def _gopher_failed(
    attributes: Mapping[str, Any], config: GopherConfig, names: dict[str, str]
) -> list[str] | None:
    """The Gopher rules the document fails, by the tagger's own `failed_rules` (None: a measure is missing)."""
    measures = {}
    for measure in MEASURES:
        value = attributes.get(names[measure])
        score = None if value is None else _first(value)
        if score is None:
            return None
        measures[measure] = float(score)
    return failed_rules(measures, config)


def _c4_failed(attributes: Mapping[str, Any], names: dict[str, str]) -> list[str] | None:
    """The C4 document rules the document fails (None: its line counts are missing)."""
    lines, removed = attributes.get(names["line_count"]), attributes.get(names["removed_line_fraction"])
    line_count = None if lines is None else _first(lines)
    removed_fraction = None if removed is None else _first(removed)
    if line_count is None or removed_fraction is None:
        return None
    failed = ["no_kept_lines"] if line_count == 0 or removed_fraction >= 1 else []
    for flag in _C4_FLAGS:
        value = attributes.get(names[flag])
        score = None if value is None else _first(value)
        if score is not None and score >= 0.5:
            failed.append(flag)
    return failed


def _count_c4_lines(slot: dict[str, int], attributes: Mapping[str, Any], names: dict[str, str]) -> None:
    """Lines C4 drops, by reason, and the document's non-blank lines (every document, passing or not)."""
    for reason in LINE_REASONS:
        value = attributes.get(names[reason])
        spans = _spans(value) if value else 0
        if spans:
            _add(slot, f"lines:{reason}", spans)
            _add(slot, f"line_docs:{reason}")
    lines = attributes.get(names["line_count"])
    line_count = None if lines is None else _first(lines)
    if line_count:
        _add(slot, "lines", int(line_count))


def _count_families(slot: dict[str, int], failed: list[str]) -> None:
    for family, members in GOPHER_FAMILIES.items():
        hits = sum(rule in members for rule in failed)
        if hits:
            _add(slot, f"fail:{family}")
            if hits == len(failed):
                _add(slot, f"only:{family}")


# --------------------------------------------------------------------------------------------- rendering


_FAMILY_LABELS = {
    "family:repeated_lines_or_paragraphs": "any repeated-line or -paragraph rule",
    "family:most_common_2_to_4grams": "any most-common 2- to 4-gram rule",
    "family:duplicate_5_to_10grams": "any duplicate 5- to 10-gram rule",
}


def _label(rule: str) -> Raw:
    if rule in _FAMILY_LABELS:
        return Raw(f"<em>{esc(_FAMILY_LABELS[rule])}</em>")
    return Raw(f"<code>{esc(rule)}</code>")


def _nowrap(text: str) -> Raw:
    return Raw(f'<span style="white-space:nowrap">{esc(text)}</span>')


def _wide(markup: str) -> str:
    """A table that may be wider than the page (a column pair per source) scrolls instead of spilling."""
    return f'<div style="overflow-x:auto">{markup}</div>'


def _pair(c: dict[str, int], first: str, second: str) -> str:
    return f"{c.get(first, 0):,} / {c.get(second, 0):,}"


def _rule_rows(block: dict[str, Any], counts: list[dict[str, int]]) -> list[list[object]]:
    """One row per rule, most failing first (families last): threshold, total failing / only this rule and
    share, then failing / only for each source. `counts`: the sources' counts, then the total's."""
    total = counts[-1]
    rules = [r for r in block["rules"] if not r.startswith("family:")]
    rules.sort(key=lambda r: -total.get(f"fail:{r}", 0))  # stable: ties keep the tagger's order
    rules += [r for r in block["rules"] if r.startswith("family:")]
    return [
        [
            _label(rule),
            _nowrap(block["thresholds"].get(rule, "")),
            total.get(f"fail:{rule}", 0),
            total.get(f"only:{rule}", 0),
            pct(total.get(f"fail:{rule}", 0), total.get("checked", 0)),
            *(_pair(c, f"fail:{rule}", f"only:{rule}") for c in counts[:-1]),
        ]
        for rule in rules
    ]


def _line_rows(block: dict[str, Any], counts: list[dict[str, int]]) -> list[list[object]]:
    total = counts[-1]
    return [
        [
            _label(reason),
            block["thresholds"].get(reason, ""),
            total.get(f"lines:{reason}", 0),
            total.get(f"line_docs:{reason}", 0),
            pct(total.get(f"lines:{reason}", 0), total.get("lines", 0)),
            *(_pair(c, f"lines:{reason}", f"line_docs:{reason}") for c in counts[:-1]),
        ]
        for reason in block["line_reasons"]
    ]


def render_quality(data: dict[str, Any]) -> str:
    """The section: per Gopher / C4 tagger, a table of rules × sources (failing, failing only this rule)."""
    blocks = data.get("quality") or {}
    if not blocks:  # optional taggers, not missing data: a hint, not an empty section
        return (
            '<p class="meta">No Gopher or C4 attributes. '
            + esc(
                "Run `dolma-kit tag --taggers gopher c4` on the documents to see which quality rule each "
                "document fails."
            )
            + "</p>"
        )
    parts = [
        '<p class="meta">Documents failing each rule, and failing <em>only</em> that rule (relaxing its '
        "threshold alone would let them pass), recomputed from the attribute rows under the thresholds the "
        "experiment was tagged with; per source: failing / only this rule. A document can fail several rules, "
        "so the rows add up to more than the documents failing; the repetition rules come in families (a page "
        "that repeats 10-grams repeats 5-grams too), so the last rows count a family as one rule. Tagging "
        "marks; <code>mix</code> removes only where a recipe filters on <code>pass</code> or a measure.</p>"
    ]
    for key, block in blocks.items():
        sources = [s for s, v in data["sources"].items() if key in (v.get("quality") or {})]
        counts = [data["sources"][s]["quality"][key] for s in sources]
        counts.append(data["total"]["quality"].get(key, {}))
        total = counts[-1]
        checked, failed = total.get("checked", 0), total.get("failed", 0)
        note = (
            f"{num(failed)} of {num(checked)} documents fail <code>pass</code> ({pct(failed, checked)}); "
            f"thresholds from {esc(block['thresholds_from'])}."
        )
        if total.get("pass_disagrees"):
            note += (
                f' <span class="bad">For {num(total["pass_disagrees"])} documents the written <code>pass</code> '
                "disagrees with these thresholds</span> (tagged with other options than those recorded)."
            )
        if total.get("unmeasured"):
            note += f" {num(total['unmeasured'])} documents lack a measure and are not broken down."
        header = ["rule", "kept when", "failing", "only this rule", "share failing"]
        header += list(sources)
        any_rule: list[object] = ["any rule (pass = 0)", "", failed, "", pct(failed, checked)]
        any_rule += [f"{c.get('failed', 0):,} of {c.get('checked', 0):,}" for c in counts[:-1]]
        parts.append(f'<h3>{esc(key)} ({esc(block["family"])})</h3><p class="meta">{note}</p>')
        parts.append(_wide(table(header, _rule_rows(block, counts), total=any_rule, css_class="stages")))
        if block["line_reasons"]:
            line_header = ["line reason", "dropped when", "lines", "documents with one"]
            line_header += ["share of lines", *sources]
            parts.append(
                '<p class="meta">Lines C4 drops, by the first reason each fails (a document whose kept lines '
                "hold too few sentences fails <code>too_few_sentences</code>); per source: lines / documents.</p>"
            )
            parts.append(_wide(table(line_header, _line_rows(block, counts), css_class="stages")))
    return "".join(parts)
