"""`dolma-kit show DOC_ID`: one document, every attribute every experiment wrote for it, and what mix did.

The answer is one JSON-ready object (`--json` prints it; the CLI renders the same object), so what a person
reads and what a script reads cannot differ. Per occurrence of the id:

- where it was read (input file:line), its source, length and the first `chars` characters of its text;
- per experiment (`attributes/<experiment>/…` beside the documents, or those named), the attribute file and
  line and every attribute: the spans exactly as written, with the text each span covers;
- per mix output that read its shard: kept or removed, the deciding rule and the values it read, the spans
  replaced, how many copies sampling made and where they are in the parts (`analysis.show_mix`);
- where it is in a tokenized folder (the tokenize id index, `provenance.TokenizedDir.find_document`).

Finding the document streams every shard (`analysis.show_find`) unless a tokenized folder knows the id: then
only the shard its tokens came from is read (the input shard behind a mixed part, via mix's manifests) and
`all_shards` makes it scan the rest too. A document mix removed is not in the tokens, so it costs a scan.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dolma_kit import storage
from dolma_kit.analysis.report_quality import experiment_producers, failed_quality_rules
from dolma_kit.analysis.show_find import (
    Occurrence,
    attribute_file,
    attribute_row,
    document_shards,
    experiments_beside,
    find_document,
    is_document_level,
    is_spans,
    root_shards,
    span_json,
)
from dolma_kit.analysis.show_mix import (
    MixOutput,
    explain_occurrence,
    find_mix_outputs,
    input_of_part,
    pipeline_markers,
    same_path,
)
from dolma_kit.attributes import attribute_root_and_relative
from dolma_kit.errors import DolmaKitError
from dolma_kit.provenance import MANIFEST_NAME, TokenizedDir


def tokens_folder(root: str | None, tokens: str | None) -> str | None:
    """The tokenized folder to consult: the one given, the pipeline's `tokenize` destination, `<root>/tokens`."""
    if tokens is not None:
        return tokens
    if root is None:
        return None
    for marker in pipeline_markers(root):
        destination = (marker.get("options") or {}).get("destination")
        if (
            marker.get("command") == "tokenize"
            and destination
            and storage.exists(storage.join(destination, MANIFEST_NAME))
        ):
            return str(destination)
    default = storage.join(root, "tokens")
    return default if storage.exists(storage.join(default, MANIFEST_NAME)) else None


def _experiments(
    occ: Occurrence, named: list[str] | None, outputs: list[MixOutput]
) -> list[tuple[str, str | None]]:
    """(experiment, attribute root or None) to read: those named (`NAME` or `NAME=DIR`), else every one beside
    the documents plus those a mix recipe reads from elsewhere."""
    if named:
        return [(n.partition("=")[0], n.partition("=")[2] or None) for n in named]
    found: list[tuple[str, str | None]] = [(e, None) for e in experiments_beside(occ.doc.path)]
    for output in outputs:
        for plan in output.plans:
            for experiment, root in plan.experiments:
                if root is not None and (experiment, root) not in found:
                    found.append((experiment, root))
    return found


def _attributes(occ: Occurrence, experiment: str, root: str | None, chars: int) -> dict[str, Any]:
    try:
        row = attribute_row(occ, experiment, root)
        path = attribute_file(occ.doc.path, experiment, root)
    except DolmaKitError:  # a shard outside any documents/ folder, named without NAME=DIR
        missing = f"the shard is not under a documents/ folder: name its attributes with -e {experiment}=DIR"
        return {"experiment": experiment, "path": None, "line": None, "missing": missing, "attributes": {}}
    if row is None:
        missing = "no row for this document" if storage.exists(path) else "no attribute file"
        return {"experiment": experiment, "path": path, "line": None, "missing": missing, "attributes": {}}
    text = occ.doc.text
    attributes = {}
    for name, spans in row.attributes.items():
        if not is_spans(spans):  # a Dolma file's nested object: shown as it is
            attributes[name] = {"spans": spans, "document_level": False, "value": spans, "excerpts": None}
            continue
        level = is_document_level(spans, text)
        entry: dict[str, Any] = {"spans": spans, "document_level": level}
        if level:
            entry["value"] = spans[0][2]
        else:
            entry["excerpts"] = span_json(spans, text, chars)
        attributes[name] = entry
    return {
        "experiment": experiment,
        "path": row.path,
        "line": row.line,
        "attributes": attributes,
        "quality_rules_failed": _quality(occ, experiment, root, row.attributes),
    }


def _quality(occ: Occurrence, experiment: str, root: str | None, row: dict[str, Any]) -> dict[str, list[str]]:
    """Per Gopher / C4 tagger of the experiment, the rules this document fails under the thresholds its
    schema records (the report's per-rule counts, for one document): why `pass` is 0."""
    attr_root, _ = attribute_root_and_relative(occ.doc.path, "", experiment, root)
    failed = {}
    for producer in experiment_producers(attr_root, experiment):
        rules = failed_quality_rules(producer, row)
        if rules is not None:
            failed[producer.prefix] = rules
    return failed


def _tokens(tokenized: TokenizedDir | None, occ: Occurrence) -> list[dict[str, Any]]:
    if tokenized is None:
        return []
    return [asdict(loc) for loc in tokenized.find_document(occ.doc.id, occ.doc.source or None)]


def show_document(
    doc_id: str,
    *,
    root: str | None = None,
    documents: list[str] | None = None,
    experiments: list[str] | None = None,
    mixed: list[str] | None = None,
    tokens: str | None = None,
    chars: int = 600,
    span_chars: int = 60,
    all_shards: bool = False,
) -> dict[str, Any]:
    """Everything known about `doc_id` (see the module docstring); an unknown id raises `DolmaKitError`
    naming every place looked in."""
    if root is None and not documents:
        raise DolmaKitError("give --root WORK_DIR or --documents GLOB")
    shards = document_shards(documents) if documents else root_shards(root or "")
    if root is None and documents:
        head, marker, _ = shards[0].rpartition("/documents/") if shards else ("", "", "")
        root = head if marker else None
    outputs = find_mix_outputs(root, mixed or [])
    notes = [f"mix output {o.path}: {o.problem}" for o in outputs if o.problem]
    tokens_dir = tokens_folder(root, tokens)
    tokenized = None
    if tokens_dir is not None:
        try:
            tokenized = TokenizedDir.open(tokens_dir)
        except DolmaKitError as exc:
            if tokens is not None:
                raise  # named with --tokens: its problem is the answer
            notes.append(f"tokens not read: {exc}")
            tokens_dir = None
    occurrences: list[Occurrence] = []
    if tokenized is not None and not all_shards:
        hinted = []
        for loc in tokenized.find_document(doc_id):
            src = input_of_part(outputs, loc.src) or loc.src
            match = next((s for s in shards if same_path(s, src)), None)
            if match is not None and match not in hinted:
                hinted.append(match)
        occurrences = find_document(doc_id, hinted)
        if occurrences:
            notes.append(
                f"found through the id index of {tokens_dir}; only the shard(s) its tokens came from were read "
                "(--all-shards scans every shard)"
            )
    if not occurrences:
        occurrences = find_document(doc_id, shards)
    if not occurrences:
        looked = documents if documents else [storage.join(root or "", "documents", "*", "*")]
        where = ", ".join(looked) + f" ({len(shards)} shard{'s' * (len(shards) != 1)})"
        if tokens_dir is not None:
            where += f" and the id index of {tokens_dir}"
        raise DolmaKitError(f"no document with id {doc_id!r} in {where}")
    shown = []
    for occ in occurrences:
        doc = occ.doc
        shown.append(
            {
                "id": doc.id,
                "source": doc.source,
                "path": doc.path,
                "line": doc.line,
                "chars": len(doc.text),
                "bytes": len(doc.text.encode("utf-8")),
                "text": doc.text[:chars],
                "truncated": len(doc.text) > chars,
                "metadata": doc.metadata,
                "experiments": [
                    _attributes(occ, e, r, span_chars) for e, r in _experiments(occ, experiments, outputs)
                ],
                "mix": [v.to_json() for v in explain_occurrence(occ, outputs, span_chars)],
                "tokens": _tokens(tokenized, occ),
            }
        )
    return {
        "id": doc_id,
        "occurrences": shown,
        "mix_outputs": [o.path for o in outputs],
        "tokens": tokens_dir,
        "notes": notes,
    }
