"""A Dolma dedupe config (`dolma dedupe -c FILE`, JSON or YAML) read key for key and run as exact dedup.

The dataclasses below mirror Dolma 1.2.1's `DeduperConfig` (python/dolma/cli/deduper.py), so a Dolma file
loads with positioned errors (`file:line:col: key: …`) and unknown keys are refused, not ignored. `build`
turns one into an `ExactDedupConfig` with `key: dolma`: the same three passes as `dolma-kit dedup exact`,
exact instead of a Bloom filter. What we cannot honour (partitions, a read-only filter of an earlier run)
stops with a message saying what to do; what we do not need (the filter's size, work dirs for S3 staging,
compression) is reported in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dolma_kit.config import ConfigError, Where, from_dict, load_yaml
from dolma_kit.dedup.dolma import DolmaDedupe
from dolma_kit.dedup.exact import ExactDedupConfig


@dataclass(kw_only=True)
class NgramSection:
    """`dedupe.paragraphs.by_ngram`."""

    ngram_length: int = 0
    """Words (UAX #29 segments) per n-gram; 0 checks whole paragraphs."""
    stride: int = 0
    """Check every stride-th n-gram (0: all)."""
    overlap_threshold: float = 1.0
    """Fraction of a paragraph's n-grams seen before for it to be marked."""
    skip_short_paragraphs: bool = False
    """Paragraphs with fewer than 2 checked n-grams are not checked whole."""


@dataclass(kw_only=True)
class ParagraphsSection:
    """`dedupe.paragraphs`."""

    attribute_name: str
    """The attribute written, e.g. `bff_duplicate_paragraph_spans`."""
    by_ngram: NgramSection | None = None
    """Dedup paragraphs by n-gram overlap instead of whole."""
    paragraph_separator: str = "\n"
    """What paragraphs are split on."""


@dataclass(kw_only=True)
class DocumentsSection:
    """`dedupe.documents`."""

    attribute_name: str
    """The attribute written, e.g. `bff_duplicate_url`."""
    key: str
    """JSONPath of the key, e.g. `$.metadata.url` or `$.text`."""


@dataclass(kw_only=True)
class DedupeSection:
    """`dedupe`."""

    name: str | None = None
    """The attribute folder (`attributes/<name>/`); default the attribute name."""
    documents: DocumentsSection | None = None
    """Document dedup (exclusive with `paragraphs`)."""
    paragraphs: ParagraphsSection | None = None
    """Paragraph dedup."""
    skip_empty: bool = False
    """Do not check keys that are empty after stripping whitespace."""
    min_length: int = 0
    """Do not check shorter keys (characters)."""
    min_words: int = 0
    """Do not check keys with fewer words."""
    num_partitions: int = 1
    """Dolma splits the key space over runs; refused above 1 (dolma-kit partitions internally)."""
    partition_index: int = 0
    """Which of `num_partitions` this run is."""
    file_partition: bool = False
    """Split by file instead of by key (with `num_partitions`)."""
    document_dir: str = "documents"
    """The path part replaced by `attributes/<name>`; only `documents` is supported."""


@dataclass(kw_only=True)
class BloomSection:
    """`bloom_filter`: accepted for compatibility; exact dedup needs no filter."""

    file: str | None = None
    size_in_bytes: int = 0
    read_only: bool = False
    estimated_doc_count: int = 0
    desired_false_positive_rate: float = 0.0


@dataclass(kw_only=True)
class PairSection:
    """`work_dir` and `compression`: Dolma's staging folders and codecs (`input`, `output`)."""

    input: str | None = None
    output: str | None = None


@dataclass(kw_only=True)
class DolmaDedupeFile:
    """A whole Dolma dedupe config file."""

    documents: list[str]
    """Document shards (globs); they must lie under a `documents/` folder."""
    dedupe: DedupeSection
    bloom_filter: BloomSection = field(default_factory=BloomSection)
    work_dir: PairSection = field(default_factory=PairSection)
    compression: PairSection = field(default_factory=PairSection)
    processes: int | None = None
    """Worker processes (Dolma's default is 1; ours all cores)."""
    dryrun: bool = False
    """Print the translated config and stop."""
    is_s3_volume: bool = False


def load(path: str) -> DolmaDedupeFile:
    """Read a Dolma dedupe config (JSON is YAML) into its dataclasses; errors name file, line and key."""
    return from_dict(DolmaDedupeFile, load_yaml(path, "Dolma dedupe config"), Where(file=path))


def build(
    file: DolmaDedupeFile, path: str, *, compat: bool = False, **overrides: object
) -> tuple[ExactDedupConfig, list[str]]:
    """The exact dedup run a Dolma config asks for, and notes on what it ignores; `overrides` are command-line
    values (processes, work_dir, …) that win over the file's."""
    where = Where(file=path, context="Dolma dedupe config")
    dedupe = file.dedupe
    if (dedupe.documents is None) == (dedupe.paragraphs is None):
        raise where.child("dedupe").error("give exactly one of 'documents' and 'paragraphs'")
    if dedupe.num_partitions > 1:
        raise where.child("dedupe.num_partitions").error(
            "dolma-kit does not split a dedup over runs: it partitions keys on disk itself and holds one "
            "partition in memory; drop num_partitions/partition_index/file_partition and run once"
        )
    if dedupe.document_dir != "documents":
        raise where.child("dedupe.document_dir").error(
            "only 'documents' is supported; move the shards under a documents/ folder"
        )
    if file.bloom_filter.read_only:
        raise where.child("bloom_filter.read_only").error(
            "dolma-kit cannot read a Dolma Bloom filter (its hash seeds are drawn at random per filter); to "
            "mark text seen in another corpus, use `dolma-kit decontaminate`"
        )
    notes = ["bloom_filter: not used; dolma-kit dedups exactly (no false positives, no filter file written)"]
    if file.work_dir.input or file.work_dir.output:
        notes.append(
            "work_dir: Dolma's S3 staging folders are not needed (shards are streamed); see --work-dir"
        )
    if file.compression.input or file.compression.output:
        notes.append("compression: inferred from file names; attributes are written as .jsonl.gz/.json.gz")
    if dedupe.documents is not None:
        attribute_name, documents_key = dedupe.documents.attribute_name, dedupe.documents.key
        ngram = NgramSection()
        separator = "\n"
    else:
        assert dedupe.paragraphs is not None
        attribute_name, documents_key = dedupe.paragraphs.attribute_name, None
        ngram = dedupe.paragraphs.by_ngram or NgramSection()
        separator = dedupe.paragraphs.paragraph_separator
    try:
        rules = DolmaDedupe(
            attribute_name=attribute_name,
            documents_key=documents_key,
            paragraph_separator=separator,
            ngram_length=ngram.ngram_length,
            stride=ngram.stride,
            overlap_threshold=ngram.overlap_threshold,
            skip_short_paragraphs=ngram.skip_short_paragraphs,
            skip_empty=dedupe.skip_empty,
            min_length=dedupe.min_length,
            min_words=dedupe.min_words,
            compat=compat,
        )
    except ValueError as exc:
        raise where.child("dedupe").error(str(exc)) from None
    values: dict[str, object] = {
        "documents": list(file.documents),
        "experiment": dedupe.name or attribute_name,
        "key": "dolma",
        "dolma": rules,
        "processes": file.processes,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ExactDedupConfig(**values), notes  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
