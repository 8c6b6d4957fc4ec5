"""Attribute files: where they live and how one is written, line-aligned with its document shard.

Attributes never touch documents (Dolma's contract): for `…/documents/<source>/<shard>` they go to
`…/attributes/<experiment>/<source>/<shard>` (or under a destination), one line per readable document, in
document order: `{"id", "source", "attributes": {"<experiment>__<producer>__<name>": [[start, end, score], …]}}`.
Documents rejected with `--skip-bad` have no attribute line; readers skip the same records, so lines stay
aligned. Every stage that writes attributes (tag, dedup, decontaminate) goes through this module.
"""

from __future__ import annotations

from collections.abc import Callable

from dolma_kit import storage
from dolma_kit.documents import Document, DocumentReader, JsonlWriter, compression_of, dumps
from dolma_kit.errors import DolmaKitError
from dolma_kit.executor import RejectsWriter, ShardStats, ShardTask

SCHEMA_NAME = "attributes_schema.json"

Attributes = dict[str, list[list[float]]]


def attribute_root_and_relative(
    doc_path: str, base: str, experiment: str, destination: str | None
) -> tuple[str, str]:
    """Where a shard's attributes go: (attribute root, path below it).

    Below the root the path mirrors the documents' (`<source>/<shard>`), keeping the extension (parquet
    shards get `.jsonl.gz` attributes).
    """
    marker = "/documents/"
    under_documents = marker in "/" + doc_path
    if under_documents:
        head, _, rel = ("/" + doc_path).rpartition(marker)
        head = head[1:]  # drop the "/" added so a relative `documents/…` path matches too
    else:
        rel = doc_path[len(base) :].lstrip("/") if base and doc_path.startswith(base + "/") else doc_path
        if "/" not in rel.strip("/"):
            rel = "/".join(doc_path.split("/")[-2:])  # keep the source folder: `<source>/<shard>`
    if compression_of(rel) == "parquet":
        rel = rel[: -len(".parquet")] + ".jsonl.gz"
    if destination:
        return destination.rstrip("/"), rel
    if not under_documents:
        raise DolmaKitError(
            f"{doc_path}: not under a 'documents/' folder, so the attributes location is unknown; "
            "pass --destination DIR"
        )
    prefix = f"{head}/" if head or doc_path.startswith("/") else ""
    return f"{prefix}attributes/{experiment}", rel


def attribute_tasks(documents: list[str], experiment: str, destination: str | None) -> list[ShardTask]:
    """One task per document shard (globs expanded), its output the mirrored attribute path."""
    tasks = []
    for info in storage.expand(documents):
        root, rel = attribute_root_and_relative(info.path, info.base, experiment, destination)
        tasks.append(ShardTask(key=rel, input=info.path, output=storage.join(root, rel), size=info.size))
    return tasks


def write_attribute_shard(
    task: ShardTask,
    stats: ShardStats,
    attributes_of: Callable[[Document], Attributes],
    *,
    skip_bad: bool,
    removal: Callable[[Attributes], str | None] | None = None,
) -> None:
    """Read `task.input`, write one attribute line per document to `task.output`, count, report progress.

    Every readable document gets a line. `removal` says, from a document's attributes, why `mix` will drop it
    (dedup's later occurrences) or None; such documents count as removed with that reason, the rest as kept.
    Bad records stop the shard (`BadRecordError` with file:line) unless `skip_bad`, which streams them to the
    shard's rejects file. The output appears only if the whole shard succeeds.
    """
    with RejectsWriter(task, stats) as rejects, JsonlWriter(task.output) as out:
        reader = DocumentReader(task.input, on_bad=rejects if skip_bad else None)
        for doc in reader:
            attributes = attributes_of(doc)
            out.write_line(dumps({"id": doc.id, "source": doc.source, "attributes": attributes}).encode())
            reason = removal(attributes) if removal is not None else None
            if reason is None:
                stats.keep()
            else:
                stats.remove(reason)
            stats.progress_bytes(reader.bytes_read)
        stats.progress_bytes(reader.bytes_read)
