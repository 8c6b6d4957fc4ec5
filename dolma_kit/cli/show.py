"""`dolma-kit show DOC_ID`: one document, its attributes and spans in every experiment, and what mix did.

The work is `analysis.show.show_document`, which returns one JSON-ready object; `--json` prints it and the
default rendering reads it. The rendering is indented blocks, not tables: attribute names and span excerpts are
long, and a table squeezed to 80 columns (or piped, where rich assumes 80) wraps them a word a line.
"""

from __future__ import annotations

import json
import textwrap
from typing import Annotated, Any

import typer
from rich.console import Console

SPANS_SHOWN = 8
"""Spans listed per attribute (all are in --json)."""


def show(
    doc_id: Annotated[str, typer.Argument(help="The document's id.")],
    root: Annotated[
        str | None,
        typer.Option(metavar="WORK_DIR", help="Work directory: documents/, attributes/, mix outputs."),
    ] = None,
    documents: Annotated[
        list[str] | None,
        typer.Option(
            "--documents", "-d", metavar="GLOB", help="Document shards to search (default: ROOT/documents)."
        ),
    ] = None,
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            metavar="NAME",
            help="Experiments to show, NAME or NAME=DIR (default: all found).",
        ),
    ] = None,
    mixed: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DIR", help="Mix output folders (default: those under ROOT and its pipeline's)."
        ),
    ] = None,
    tokens: Annotated[
        str | None, typer.Option(metavar="DIR", help="Tokenized folder (default: ROOT's, if any).")
    ] = None,
    chars: Annotated[int, typer.Option(metavar="N", help="Characters of the text shown.")] = 600,
    all_shards: Annotated[
        bool,
        typer.Option("--all-shards", help="Scan every shard even when the tokens' id index knows the id."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show one document: where it is, its text, every attribute and span, and what mix did to it."""
    from dolma_kit.analysis.show import show_document

    found = show_document(
        doc_id,
        root=root,
        documents=documents,
        experiments=experiment,
        mixed=mixed,
        tokens=tokens,
        chars=max(chars, 0),
        all_shards=all_shards,
    )
    if as_json:
        typer.echo(json.dumps(found, ensure_ascii=False, default=str))
        return
    console = Console(highlight=False)
    width = max(console.width, 40)
    for line in render(found):
        console.print(_wrap(line, width), markup=False, soft_wrap=True)


# --------------------------------------------------------------------------------------------- rendering


def _wrap(line: str, width: int) -> str:
    """A line wrapped at `width`, continuation lines indented under its text (a text line keeps its bar)."""
    if len(line) <= width:
        return line
    body = line.lstrip(" ")
    indent = line[: len(line) - len(body)]
    if body.startswith("| "):
        indent, body = indent + "| ", body[2:]
        follow = indent
    else:
        follow = indent + "    "
    return textwrap.fill(
        body,
        width,
        initial_indent=indent,
        subsequent_indent=follow,
        break_on_hyphens=False,
        break_long_words=False,
    )


def _num(value: Any) -> str:
    if value is None:
        return "absent"
    if isinstance(value, dict) and set(value) == {"first", "spans"}:
        return f"{_num(value['first'])} (first of {value['spans']} spans)"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _short(name: str, experiment: str = "") -> str:
    """`demo__gopher__pass` → `demo.gopher.pass`, or `gopher.pass` under its experiment's heading (as a
    recipe with that experiment writes it)."""
    if experiment and name.startswith(experiment + "__"):
        name = name[len(experiment) + 2 :]
    return name.replace("__", ".")


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def render(found: dict[str, Any]) -> list[str]:
    """The lines `show` prints, from `show_document`'s object."""
    lines: list[str] = []
    many = len(found["occurrences"]) > 1
    if many:
        lines.append(f"{found['id']}: {len(found['occurrences'])} documents with this id")
    for index, occ in enumerate(found["occurrences"], 1):
        if index > 1:
            lines.append("")
        lines += _document(occ, index if many else 0)
        lines += _experiments(occ)
        lines += _mix(occ, found)
        lines += _tokens(occ, found)
    lines += [f"note: {n}" for n in found["notes"]]
    return lines


def _document(occ: dict[str, Any], index: int) -> list[str]:
    head = f"[{index}] " if index else ""
    lines = [
        f"{head}{occ['id']}  source {occ['source']}",
        f"  read from {occ['path']}:{occ['line']}",
        f"  {occ['chars']:,} characters, {occ['bytes']:,} bytes UTF-8",
    ]
    if occ["metadata"]:
        lines.append(f"  metadata {json.dumps(occ['metadata'], ensure_ascii=False)}")
    shown = len(occ["text"])
    lines.append(f"  text (first {shown:,} characters):" if occ["truncated"] else "  text:")
    lines += [f"    | {line}" for line in occ["text"].split("\n")]
    if occ["truncated"]:
        lines.append("    | …")
    return lines


def _experiments(occ: dict[str, Any]) -> list[str]:
    lines = ["", "attributes"]
    if not occ["experiments"]:
        lines.append("  none found beside the documents (tag or dedup first, or name them with -e NAME=DIR)")
    for exp in occ["experiments"]:
        if exp["line"] is None:
            where = f" ({exp['path']})" if exp["path"] else ""
            lines.append(f"  {exp['experiment']}: {exp['missing']}{where}")
            continue
        lines.append(f"  {exp['experiment']}  ({exp['path']}:{exp['line']})")
        for prefix, rules in exp.get("quality_rules_failed", {}).items():
            verdict = "fails " + ", ".join(rules) if rules else "passes every rule"
            lines.append(f"    {prefix} {verdict} (under the thresholds its schema records)")
        if not exp["attributes"]:
            lines.append("    (no attribute: nothing matched)")
        width = min(max((len(_short(n, exp["experiment"])) for n in exp["attributes"]), default=0), 36)
        for name, entry in exp["attributes"].items():
            label = _short(name, exp["experiment"]).ljust(width)
            if entry["document_level"]:
                lines.append(f"    {label}  {_num(entry['value'])}")
                continue
            if entry["excerpts"] is None:  # not spans: a nested object from a Dolma file
                lines.append(f"    {label}  {json.dumps(entry['value'], ensure_ascii=False)}")
                continue
            spans = entry["excerpts"]
            lines.append(f"    {label}  {len(spans)} span{'s' * (len(spans) != 1)}")
            for span in spans[:SPANS_SHOWN]:
                lines.append(
                    f"      [{span['start']}, {span['end']}) {_num(span['score'])}  {_quote(span['text'])}"
                )
            if len(spans) > SPANS_SHOWN:
                lines.append(f"      … {len(spans) - SPANS_SHOWN} more (--json lists all)")
    return lines


def _mix(occ: dict[str, Any], found: dict[str, Any]) -> list[str]:
    lines = ["", "what mix did"]
    if not occ["mix"]:
        where = ", ".join(found["mix_outputs"]) or "no mix output found (pass --mixed DIR)"
        lines.append(f"  no stream read this shard ({where})")
    for v in occ["mix"]:
        lines.append(f"  {v['output']}, stream {v['stream']}:")
        if v["decision"] == "removed":
            lines.append(f"    REMOVED by {_quote(v['reason'])}")
        else:
            copies = f", sampled {v['copies']}×" if v["copies"] != 1 else ""
            lines.append(f"    KEPT{copies}")
        for rule in v["rules"]:
            deciding = rule.get("holds") and v["decision"] == "removed" and rule["name"] == v["reason"]
            mark = (
                "DECIDES"
                if deciding
                else {True: "holds  ", False: "no     "}.get(rule.get("holds"), "       ")
            )
            kind = rule["kind"]
            lines.append(
                f"    {mark} {kind} {_quote(rule['name'])}"
                + (f": {_short(rule['expr'])}" if "expr" in rule else "")
            )
            values = ", ".join(f"{_short(n)} = {_num(x)}" for n, x in rule["values"].items())
            if values:
                lines.append(f"              {values}")
        for r in v["replaced"]:
            lines.append(
                f"    replaced [{r['start']}, {r['end']}) {_short(r['attribute'])} {_quote(r['text'])} → {_quote(r['replacement'])}"
            )
        for loc in v["locations"]:
            lines.append(f"    in the output at {loc['path']}:{loc['line']}")
        lines += [f"    note: {n}" for n in v["notes"]]
    return lines


def _tokens(occ: dict[str, Any], found: dict[str, Any]) -> list[str]:
    if found["tokens"] is None:
        return []
    lines = ["", f"tokens ({found['tokens']})"]
    if not occ["tokens"]:
        lines.append("  not in the tokenized folder")
    for loc in occ["tokens"]:
        lines.append(
            f"  {loc['part']} [{loc['start']:,}, {loc['end']:,}): {loc['end'] - loc['start']:,} tokens, "
            f"read from {loc['src']}:{loc['loc']}"
        )
    return lines
