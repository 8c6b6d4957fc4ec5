"""What `dolma-kit mix` prints: the resolved recipe (`--explain`) and the per-stream, per-rule table.

Kept apart from `mix.py` so the stage has no presentation code and the CLI stays a thin shell.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from dolma_kit.mix.dolma_run import OVERLAP, PAST_END
from dolma_kit.mix.filters import unparse
from dolma_kit.mix.jsonpath import INT_FLOAT
from dolma_kit.mix.recipe import Recipe
from dolma_kit.mix.stage import MixResult, StreamPlan


def explain(recipe: Recipe, plans: list[StreamPlan], shards: dict[str, int]) -> Group:
    """The recipe as it will run: every filter with its names resolved, experiments read, output layout."""
    parts: list[Any] = []
    if recipe.translated_from:
        parts.append(
            Text(
                f"{recipe.path}: a {recipe.translated_from} mixer config, run with its semantics",
                style="bold",
            )
        )
    for plan, stream in zip(plans, recipe.streams, strict=True):
        table = Table(title=f"stream {plan.name}", show_header=False, title_justify="left")
        table.add_column("what", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_row("documents", "\n".join(stream.documents) + f"\n({shards.get(plan.name, 0)} shards)")
        declared = ", ".join(stream.attributes) or "none"
        read = ", ".join(e for e, _ in plan.experiments) or "none"
        table.add_row("attributes", f"declared: {declared}; read: {read}")
        for (name, node), rule in zip(plan.include, stream.include, strict=True):
            table.add_row("include", escape(_rule(name, rule.expr, unparse(node))))
        for (name, node), rule in zip(plan.exclude, stream.exclude, strict=True):
            table.add_row("exclude", escape(_rule(name, rule.expr, unparse(node))))
        if plan.dolma is not None:
            _dolma_rows(table, plan)
        for name, attribute, min_score, replacement in plan.replace:
            table.add_row(
                "replace", escape(f"{attribute} (score ≥ {min_score:g}) → {replacement!r}  [{name}]")
            )
        if plan.sample != 1.0:
            table.add_row("sample", f"{plan.sample:g} (seed {plan.seed}, hash of (seed, source, id))")
        out = plan.output
        table.add_row(
            "output",
            f"{out.path}/<source>/<shard>-NNNN.{out.format}, parts ≤ {out.max_bytes:,} bytes uncompressed",
        )
        parts.append(table)
    return Group(*parts)


def _dolma_rows(table: Table, plan: StreamPlan) -> None:
    """A Dolma stream's own rules, as written (they run with Dolma's semantics, docs/mix.md)."""
    assert plan.dolma is not None
    rules = plan.dolma.rules
    compatible = " + --dolma-compatible" if plan.dolma.dolma_compatible else ""
    table.add_row("semantics", f"Dolma 1.2.1 mixer ({rules.syntax}){compatible}")
    for query in rules.include:
        table.add_row("include", escape(str(query)))
    for query in rules.exclude:
        table.add_row("exclude", escape(str(query)))
    for span in rules.span_replacement:
        lo = "-inf" if span.min_score is None else f"{span.min_score:g}"
        hi = "inf" if span.max_score is None else f"{span.max_score:g}"
        table.add_row("replace", escape(f"{span.span} ({lo} <= score < {hi}) → {span.replacement!r}"))
    if rules.discard_fields:
        table.add_row("discard", ", ".join(rules.discard_fields))
    if rules.min_text_length:
        table.add_row("min length", f"{rules.min_text_length:,} UTF-8 bytes of stripped text")
    names = plan.dolma.names
    table.add_row("decoded", "every attribute" if names is None else ", ".join(sorted(names)) or "none")


def _rule(name: str, written: str, resolved: str) -> str:
    label = f"[{name}] " if name not in (written, resolved) else ""
    return f"{label}{written}\n  = {resolved}" if written != resolved else f"{label}{written}"


def summary_table(result: MixResult) -> Table:
    """Per stream: documents in, removed by each rule, spans replaced per rule, documents and bytes out."""
    table = Table(title="mix: documents in = kept + removed + rejected")
    table.add_column("stream", no_wrap=True)
    table.add_column("step", overflow="fold")
    table.add_column("documents", justify="right", no_wrap=True)
    table.add_column("spans", justify="right", no_wrap=True)
    table.add_column("MB", justify="right", no_wrap=True)
    for s in result.streams:
        name = s["stream"]
        table.add_row(name, f"in ({s['shards']} shards)", f"{s['documents_in']:,}", "", "", style="bold")
        for reason, n in s["removed_by"].items():
            table.add_row("", escape(f"removed: {reason}"), f"{n:,}", "", "")
        if s["rejected"]:
            table.add_row("", "rejected (bad records)", f"{s['rejected']:,}", "", "")
        table.add_row("", "kept", f"{s['kept']:,}", "", "")
        for rule, n in s["spans_replaced"].items():
            table.add_row("", escape(f"replaced: {rule}"), "", f"{n:,}", "")
        for line in dolma_lines(s.get("dolma")):
            table.add_row("", escape(line), "", "", "")
        table.add_row(
            "",
            "out",
            f"{s['documents_out']:,}",
            "",
            f"{s['bytes_out'] / 1e6:,.2f}",
            style="bold",
            end_section=True,
        )
    return table


def examples_note(result: MixResult) -> Text:
    """Where the examples of what each rule removed and kept went (`mix.examples`): below the table, not in it,
    one line a file with the path first, so it can be copied whole."""
    if not result.examples:
        return Text("examples: none written (--examples 0)", style="dim")
    lines = [f"examples: {path} (documents each rule removed and kept)" for path in result.examples]
    return Text("\n".join(lines), overflow="ignore", no_wrap=True)


def dolma_lines(dolma: dict[str, Any] | None) -> list[str]:
    """What a Dolma mixer stream did that Dolma 1.2.1 does differently or oddly, in words, for the run's table."""
    if not dolma:
        return []
    notes, compatible = dolma["notes"], dolma["compatible"]
    mode = "--dolma-compatible" if compatible else "Dolma 1.2.1 semantics, our number rule"
    lines = [f"Dolma mixer stream ({mode})"]
    if notes.get(INT_FLOAT):
        n = notes[INT_FLOAT]
        if compatible:
            lines.append(
                f"reproduced Dolma: {n:,} documents compared an integer with an equal float as unequal"
            )
        else:
            lines.append(
                f"differs from Dolma: {n:,} documents compared an integer with an equal float (1 >= 1.0): "
                "true here, false in Dolma 1.2.1; --dolma-compatible reproduces Dolma"
            )
    if notes.get(PAST_END):
        lines.append(
            f"as Dolma: {notes[PAST_END]:,} documents had a span past the end of the text; it ends there"
        )
    if notes.get(OVERLAP):
        lines.append(
            f"as Dolma: {notes[OVERLAP]:,} documents had a span inside an earlier one; it was skipped"
        )
    if dolma["absent"]:
        shown = ", ".join(dolma["absent"][:4]) + (" …" if len(dolma["absent"]) > 4 else "")
        lines.append(f"as Dolma: in no attribute row, so never matched: {shown}")
    return lines
