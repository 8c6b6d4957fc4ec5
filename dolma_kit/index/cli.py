"""The index's subcommands: `dolma-kit index`, `dolma-kit find`, `dolma-kit trace-output`.

Thin: each parses, calls one library function and prints a rich table (or JSON with --json). They are
registered in `dolma_kit.cli` next to `trace` and `provenance`, the other questions asked of tokens and runs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dolma_kit.errors import DolmaKitError

Tokens = Annotated[
    Path, typer.Argument(help="A folder written by `dolma-kit tokenize` (the index lives in it).")
]


def index(
    tokens: Tokens,
    processes: Annotated[
        int, typer.Option("--processes", "-p", help="Indexer jobs and merge threads (0: all cores).")
    ] = 0,
    memory_gb: Annotated[
        float, typer.Option(help="Memory bound of the build: larger parts sort in jobs.")
    ] = 4.0,
    force: Annotated[bool, typer.Option(help="Rebuild every shard, even finished ones.")] = False,
) -> None:
    """Build the suffix-array index of a tokenized folder (resumable; a changed folder is rebuilt)."""
    from dolma_kit.index.build import IndexConfig, build_index

    summary = build_index(
        IndexConfig(tokens=str(tokens), processes=processes, memory_gb=memory_gb, force=force)
    )
    console = Console()
    if summary.rebuilt_stale:
        Console(stderr=True).print(
            "[yellow]the tokens changed since the last index: rebuilt it from scratch[/]"
        )
    per_token = summary.index_bytes / max(summary.tokens, 1)
    console.print(
        f"{summary.index_dir}: {summary.tokens:,} tokens in {summary.parts_built + summary.parts_skipped} parts "
        f"({summary.parts_built} indexed now, {summary.parts_skipped} already done); index {summary.index_bytes:,} "
        f"bytes ({per_token:.2f} per token, the tokens themselves linked, not copied)"
    )


def _query_ids(ix, text: str | None, tokens: str | None) -> list[int]:
    if (text is None) == (tokens is None):
        raise DolmaKitError("give exactly one of TEXT, --tokens IDS or --ngrams FILE")
    if tokens is not None:
        try:
            return [int(t) for t in tokens.replace(",", " ").split()]
        except ValueError:
            raise DolmaKitError(f"--tokens {tokens!r}: expected token ids like 12,345,6789") from None
    return ix.encode(text or "")


def find(
    index_dir: Annotated[Path, typer.Option("--index", help="The tokenized folder whose index to query.")],
    text: Annotated[
        str | None, typer.Argument(help="Text to look for (encoded with the corpus's tokenizer).")
    ] = None,
    tokens: Annotated[str | None, typer.Option(help="Token ids instead of TEXT: 12,345,6789.")] = None,
    ngrams: Annotated[
        Path | None, typer.Option(help="A file of queries, one text a line: print the exact count of each.")
    ] = None,
    run: Annotated[
        Path | None, typer.Option(help="A training run: add the steps each occurrence was seen.")
    ] = None,
    repeats: Annotated[
        int | None,
        typer.Option(
            help="Instead: the most repeated spans of this many tokens, per source (-k per source)."
        ),
    ] = None,
    limit: Annotated[int, typer.Option("-k", "--limit", help="Occurrences to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Count a token sequence in the corpus and list where it occurs (and, with --run, when it was trained on)."""
    from dolma_kit.index.schedule import Schedule, seen_dict
    from dolma_kit.index.store import TokenIndex

    ix = TokenIndex.open(index_dir)
    if repeats is not None:
        _print_repeats(ix, repeats, limit, as_json)
        return
    if ngrams is not None:
        if text is not None or tokens is not None:
            raise DolmaKitError("--ngrams FILE counts every line of FILE: give no TEXT or --tokens with it")
        for line in ngrams.read_text(encoding="utf-8").splitlines():
            if line.strip():
                typer.echo(json.dumps({"text": line, "count": ix.count(ix.encode(line))}, ensure_ascii=False))
        return
    ids = _query_ids(ix, text, tokens)
    count, found = ix.find(ids, limit=max(limit, 0))
    seen = Schedule(run, ix.tokenized.path).seen(found) if run is not None else []
    if as_json:
        rows = [
            {**dataclasses.asdict(o), **(seen_dict(seen[i]) if seen else {})} for i, o in enumerate(found)
        ]
        typer.echo(json.dumps({"tokens": ids, "count": count, "occurrences": rows}, ensure_ascii=False))
        return
    table = Table(
        title=f"{count:,} occurrences of {len(ids)} tokens" + (f" (first {len(found)})" if found else "")
    )
    columns = ["id", "source", "input file:line", "chars", "part[tokens]"] + (
        ["steps", "held out"] if seen else []
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    for i, o in enumerate(found):
        row = [
            o.id,
            o.source,
            f"{o.src}:{o.loc}",
            f"{o.char_start}–{o.char_end}",
            f"{o.part}[{o.start}:{o.end}]",
        ]
        if seen:
            steps = seen[i].steps
            row += [
                ", ".join(map(str, steps[:12])) + (" …" if len(steps) > 12 else "") or "never",
                str(seen[i].held_out),
            ]
        table.add_row(*row)
    Console().print(table)


def _print_repeats(ix, length: int, top: int, as_json: bool) -> None:
    from dolma_kit.index.repeats import top_repeats

    found = top_repeats(ix, length=length, top=top)
    if as_json:
        typer.echo(
            json.dumps(
                {s: [dataclasses.asdict(r) for r in rows] for s, rows in found.items()}, ensure_ascii=False
            )
        )
        return
    table = Table(title=f"most repeated {length}-token spans per source")
    for column in ("source", "in source", "documents", "in corpus", "span"):
        table.add_column(column, overflow="fold")
    for source, rows in found.items():
        for r in rows:
            table.add_row(
                source, f"{r.source_count:,}", f"{r.documents:,}", f"{r.count:,}", r.text or str(r.tokens)
            )
    Console().print(table)


def trace_output(
    run: Annotated[
        Path | None, typer.Argument(help="The training run (its model generates; its order dates).")
    ] = None,
    index_dir: Annotated[
        Path | None, typer.Option("--index", help="Tokenized folder (default: the run's data).")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option(help="Let the model continue this prompt, then attribute.")
    ] = None,
    text: Annotated[str | None, typer.Option(help="Attribute this text instead of generating.")] = None,
    checkpoint: Annotated[int | None, typer.Option(help="Checkpoint step (default: the newest).")] = None,
    new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 64,
    min_len: Annotated[int, typer.Option(help="Shortest span kept, in tokens.")] = 4,
    spans: Annotated[int, typer.Option(help="Spans to report (the rarest).")] = 10,
    docs: Annotated[int, typer.Option(help="Documents listed per span.")] = 5,
    html: Annotated[Path | None, typer.Option(help="Write an HTML view of the spans here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Find the spans of a model's output that occur verbatim in its training data, and when it saw them."""
    from dolma_kit.index.attribute import trace_output as attribute_text
    from dolma_kit.index.store import TokenIndex
    from dolma_kit.index.view import attribution_dict, write_html

    if index_dir is None:
        if run is None:
            raise DolmaKitError("give RUN, or --index TOKENS with --text")
        from train.trace import RunTrace

        index_dir = Path(RunTrace(run).data.dirs[0].path)
    ix = TokenIndex.open(index_dir)
    att = attribute_text(
        ix,
        text=text,
        prompt=prompt,
        run=run,
        checkpoint=checkpoint,
        new_tokens=new_tokens,
        min_len=min_len,
        max_spans=spans,
        docs=docs,
    )
    if html is not None:
        Console(stderr=True).print(f"wrote {write_html(ix, att, html)}")
    data = attribution_dict(att)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    console = Console()
    console.print(f"[bold]{'generated' if prompt else 'text'}[/] ({len(att.ids)} tokens): {att.text}")
    table = Table(title=f"{len(att.spans)} spans of ≥ {min_len} tokens found verbatim (rarest first)")
    for column in (
        "span",
        "tokens",
        "count",
        "documents",
        "first step" if run else "",
        "by checkpoint" if checkpoint else "",
    ):
        if column:
            table.add_column(column, overflow="fold")
    for span in data["spans"]:
        row = [span["text"] or "", str(span["end"] - span["start"]), f"{span['count']:,}"]
        row.append("\n".join(f"{o['id']} [{o['source']}] {o['src']}:{o['loc']}" for o in span["occurrences"]))
        if run:
            row.append(str(span.get("first_step") or "never"))
        if checkpoint:
            row.append(
                ", ".join("yes" if o.get("trained_by_checkpoint") else "no" for o in span["occurrences"])
            )
        table.add_row(*row)
    console.print(table)
