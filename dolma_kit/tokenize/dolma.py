"""`dolma tokens` configs (Dolma 1.2.1) → `tokenize`'s keys, so `dolma -c tokens.yaml tokens` becomes
`dolma-kit tokenize-dolma tokens.yaml` and writes Dolma's token ids document for document.

Mapping (docs/tokenize.md): `documents`, `destination`, `processes`, `seed`, `dtype` as they are;
`tokenizer.name_or_path` → `tokenizer` (a file: nothing is downloaded); `tokenizer.eos_token_id` /
`pad_token_id` / `bos_token_id` → `eos_id` / `pad_id` / `bos_id`; `tokenizer.encode_special_tokens` →
`encode_special_tokens` (Dolma's default false: specials written in a text become special ids);
`batch_size` → `shuffle_window`; `max_size` → `max_tokens_per_file` = max_size - 1 (Dolma hands `max_size`
to its memmap writer as a token count, and a part holds fewer than that). Text is always stripped (`strip`),
and the tokenizer's post-processor is not run (`post_processor: false`), as Dolma encodes `text.strip()`
without it and adds only its BOS and EOS ids. The deprecated `tokenizer_name_or_path` takes Dolma's legacy
EOS, the last id of the vocabulary.

Keys that only change which process writes which document, in which order (`ring_size`,
`files_per_process`, `sample_ring_prop`, `work_dir`, `debug`, `tokenizer.refresh`) are accepted and have no
equivalent; anything that would or could change the ids and is not reproduced
(`segment_before_tokenization: true`, `fast: false`, other text or id fields) is an error at its file:line,
never a silent approximation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from dolma_kit.config import Where, plain
from dolma_kit.tokenize.loading import BUILTIN, load_tokenizer

TOP_KEYS = {
    "documents",
    "destination",
    "tokenizer",
    "tokenizer_name_or_path",
    "processes",
    "files_per_process",
    "batch_size",
    "ring_size",
    "fields",
    "sample_ring_prop",
    "max_size",
    "dtype",
    "debug",
    "seed",
    "work_dir",
    "dryrun",
}
TOKENIZER_KEYS = {
    "name_or_path",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "segment_before_tokenization",
    "refresh",
    "fast",
    "encode_special_tokens",
}
FIELD_DEFAULTS = {
    "text_field_name": "text",
    "text_field_type": "str",
    "id_field_name": "id",
    "id_field_type": "str",
}


def is_dolma_tokens_config(data: Any) -> bool:
    """Dolma's shape: a nested `tokenizer:` mapping, or its deprecated `tokenizer_name_or_path`."""
    return isinstance(data, dict) and (
        isinstance(data.get("tokenizer"), dict) or "tokenizer_name_or_path" in data
    )


def _mapping(value: Any, where: Where) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.error("expected a mapping")
    return value


def _check_keys(data: dict[str, Any], known: set[str], where: Where) -> None:
    for key in data:
        if key not in known:
            raise where.child(key).error(f"not a `dolma tokens` key; its keys: {', '.join(sorted(known))}")


def legacy_eos(tokenizer_path: str, where: Where) -> int:
    """Dolma's EOS for `tokenizer_name_or_path`: the vocabulary's last id (len(get_vocab()) - 1)."""
    try:
        if tokenizer_path in BUILTIN:
            return len(load_tokenizer(tokenizer_path).tokenizer.get_vocab()) - 1
        return len(Tokenizer.from_file(tokenizer_path).get_vocab()) - 1
    except Exception as exc:  # tokenizers raises a bare Exception for a missing or bad file
        raise where.error(
            f"{tokenizer_path}: cannot read the tokenizer (nothing is downloaded): {exc}"
        ) from None


def translate(path: str, data: Any) -> tuple[dict[str, Any], bool]:
    """(tokenize's keys, dryrun) from a `dolma tokens` config read from `path` (positions kept for errors)."""
    where = Where(file=path, context="dolma tokens config")
    if not isinstance(data, dict):
        raise where.error("expected a mapping of `dolma tokens` keys")
    _check_keys(data, TOP_KEYS, where)
    tok = _mapping(data.get("tokenizer"), where.child("tokenizer"))
    _check_keys(tok, TOKENIZER_KEYS, where.child("tokenizer"))
    fields = _mapping(data.get("fields"), where.child("fields"))
    _check_keys(fields, set(FIELD_DEFAULTS), where.child("fields"))
    for key, default in FIELD_DEFAULTS.items():
        if key in fields and fields[key] != default:
            at = where.child("fields").child(key)
            what = (
                f"the Dolma document format's `{default}` field only"
                if key.endswith("_name")
                else "`str` only"
            )
            raise at.error(f"{fields[key]!r}: dolma-kit reads {what}")
    if tok.get("segment_before_tokenization"):
        at = where.child("tokenizer").child("segment_before_tokenization")
        raise at.error(
            "not reproduced: Dolma's paragraph segmentation can change ids (a paragraph ending in spaces is "
            "encoded apart from its newline, which whole-text encoding may merge); remove it (long texts are "
            "encoded in pieces proven to give whole-text ids)"
        )
    if tok.get("fast", True) is False:
        raise where.child("tokenizer").child("fast").error("only `tokenizers` (fast) tokenizers are read")
    out: dict[str, Any] = {
        "strip": True,
        "post_processor": False,
        "encode_special_tokens": bool(tok.get("encode_special_tokens", False)),
    }
    name = tok.get("name_or_path") or data.get("tokenizer_name_or_path")
    if not name:
        raise where.child("tokenizer").error("missing `name_or_path` (a tokenizer.json file)")
    out["tokenizer"] = str(name)
    if str(name) not in BUILTIN and not Path(str(name)).is_file():
        at = where.child("tokenizer").of(name)
        raise at.error(
            f"{name!r}: no such file; a Hugging Face name is not downloaded: give the tokenizer.json path"
        )
    for ours, theirs in (("eos_id", "eos_token_id"), ("pad_id", "pad_token_id"), ("bos_id", "bos_token_id")):
        if tok.get(theirs) is not None:
            out[ours] = tok[theirs]
    if "eos_id" not in out and not tok and "tokenizer_name_or_path" in data:
        out["eos_id"] = legacy_eos(str(name), where.child("tokenizer_name_or_path").of(name))
    for ours, theirs in (
        ("documents", "documents"),
        ("destination", "destination"),
        ("processes", "processes"),
        ("seed", "seed"),
        ("dtype", "dtype"),
        ("shuffle_window", "batch_size"),
    ):
        if data.get(theirs) is not None:
            out[ours] = data[theirs]
    if isinstance(out.get("documents"), str):
        out["documents"] = [out["documents"]]
    if data.get("max_size") is not None:
        size = data["max_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 2:
            raise where.child("max_size").error(f"{size!r}: expected a whole number of tokens ≥ 2")
        out["max_tokens_per_file"] = size - 1
    return out, bool(plain(data.get("dryrun", False)))
