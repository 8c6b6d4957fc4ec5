"""Recipes: bad ones fail before any data is read, at file:line:col; Dolma configs translate to ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolma_kit.config import ConfigError
from dolma_kit.errors import DolmaKitError
from dolma_kit.mix import stage as mix
from dolma_kit.mix.recipe import load_recipe
from tests.mix.helpers import read_output, write_recipe, write_source
from tests.mix.test_mix import make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recipes")
    make_corpus(root)
    return root


def recipe(root: Path, exclude: str) -> str:
    return f"""streams:
  - name: web
    documents: ["{root}/documents/web/*.jsonl.gz"]
    attributes: [q]
    filter:
      exclude:
        - t.pass == 0
        - {exclude}
    output: {{path: "{root}/never"}}
"""


@pytest.mark.parametrize(
    ("exclude", "col", "message"),
    [
        ("t.pas == 0", 11, "unknown attribute 't.pas' (did you mean q.t.pass?)"),
        ("t.pass > 0.5 and 3", 28, "a number where true/false is needed"),
        ("t.lang < true", 20, "type error: cannot compare an attribute with a boolean using '<'"),
        ("(t.pass == 0", 23, "expected ')', found end of expression"),
        (
            '"t.lang < 0.5 or t.lang >> 1"',
            36,
            "expected a number, true/false, an attribute or '(', found '>'",
        ),
        ("'count(t.email) = 2'", 27, "unexpected character '='"),
    ],
)
def test_bad_filters_point_at_the_recipe(corpus: Path, exclude: str, col: int, message: str) -> None:
    path = write_recipe(corpus / "bad.yaml", recipe(corpus, exclude))
    with pytest.raises(DolmaKitError) as info:
        mix.resolve(load_recipe(str(path)))
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"{path}:8:{col}: "), first
    assert message in first
    assert not (corpus / "never").exists()  # nothing was read or written


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("streams: []", "a recipe needs 'streams', a non-empty list"),
        (
            "streams:\n  - name: a\n    documents: [x]\n    output: {path: o}\n    sampel: 2",
            "unknown key 'sampel'",
        ),
        ("streams:\n  - name: a\n    documents: [x]\n    output: {path: o, format: tar}", "must be one of"),
        ("streams:\n  - name: a\n    documents: [x]\n    sample: 0\n    output: {path: o}", "must be > 0"),
        (
            "streams:\n  - name: a\n    documents: [x]\n    sample: lots\n    output: {path: o}",
            "must be a number",
        ),
        ("streams:\n  - name: a\n    documents: [x]", "needs output.path"),
        ("streams: [a, b", "not valid YAML"),
    ],
)
def test_bad_recipe_structure(tmp_path: Path, text: str, message: str) -> None:
    path = write_recipe(tmp_path / "r.yaml", text)
    with pytest.raises(ConfigError, match=message) as info:
        load_recipe(str(path))
    assert str(info.value).startswith(str(path))


def test_missing_experiment_is_named(corpus: Path) -> None:
    path = write_recipe(corpus / "noexp.yaml", recipe(corpus, "t.pass > 2").replace("[q]", "[q, nope]"))
    with pytest.raises(ConfigError, match=r"no attributes of experiment 'nope' at .*attributes/nope") as info:
        mix.resolve(load_recipe(str(path)))
    assert str(info.value).endswith("attributes: q")  # the experiments that exist (issue 16)


def test_names_from_every_attribute_file_without_a_schema(tmp_path: Path) -> None:
    """A tool that writes a name only on rows that have it (Dolma's `bff_duplicate_url`, PII kinds): a name
    seen in no first lines, only in the second shard, still resolves (it was `unknown attribute` before)."""
    first = [{"id": f"a{i}", "text": "x"} for i in range(3)]
    write_source(tmp_path, "web", first, {"d": [{"d__t__score": [[0, 1, 0.5]]}] * 3})
    write_source(
        tmp_path, "web", [{"id": "b", "text": "y"}], {"d": [{"d__t__rare": [[0, 1, 1]]}]}, shard="part-0001"
    )
    ok = write_recipe(tmp_path / "r.yaml", recipe(tmp_path, "t.rare > 0").replace("[q]", "[d]").replace("t.pass == 0", "t.score > 2"))  # fmt: skip
    (plan,), _ = mix.resolve(load_recipe(str(ok)))
    assert plan.experiments == (("d", None),)
    assert plan.picks == (("d__t__rare", "d__t__score"),)
    result = mix.mix(load_recipe(str(ok)), processes=1)
    assert result.streams[0]["removed_by"] == {"t.score > 2": 0, "t.rare > 0": 1}


DOLMA = """
# a Dolma mixer config, as in Dolma's examples
streams:
  - name: web
    documents:
      - {root}/documents/web/*.jsonl.gz
    attributes: [q]
    output:
      path: {root}/dolma_out
      max_size_in_bytes: 5000
      discard_fields: [attributes]
    filter:
      include:
        - "$.attributes[?(@.q__t__lang[0][2] >= 0.5)]"
      exclude:
        - "$.attributes[?(@.q__t__pass && @.q__t__pass[0] && @.q__t__pass[0][2] < 0.5)]"
        - "$@.attributes[?(@.q__t__email && @.q__t__email[1])]"
    span_replacement:
      - span: "$.attributes.q__t__email"
        min_score: 0.5
        replacement: "|||EMAIL_ADDRESS|||"
work_dir: {{input: /tmp/in, output: /tmp/out}}
processes: 2
"""

OURS = """
streams:
  - name: web
    documents: ["{root}/documents/web/*.jsonl.gz"]
    attributes: [q]
    filter:
      include: [t.lang >= 0.5]
      exclude: [t.pass < 0.5, count(t.email) >= 2]
    replace: [{{attribute: t.email, replacement: "|||EMAIL_ADDRESS|||", min_score: 0.5}}]
    output: {{path: "{root}/ours_out", max_bytes: 5000}}
"""


def test_dolma_config_keeps_what_the_equivalent_recipe_keeps(corpus: Path) -> None:
    """Same documents and texts as our recipe; Dolma's output adds metadata.provenance (file:line)."""
    dolma = load_recipe(str(write_recipe(corpus / "dolma.yaml", DOLMA.format(root=corpus))))
    assert dolma.translated_from == "dolma"
    assert dolma.streams[0].dolma is not None and not dolma.streams[0].exclude
    ours = load_recipe(str(write_recipe(corpus / "ours.yaml", OURS.format(root=corpus))))
    a, b = mix.mix(dolma, processes=1), mix.mix(ours, processes=1)
    theirs, mine = read_output(corpus / "dolma_out"), read_output(corpus / "ours_out")
    assert len(theirs) > 100
    assert [(d["id"], d["text"]) for d in theirs] == [(d["id"], d["text"]) for d in mine]
    assert all("attributes" not in d for d in theirs)  # discard_fields: [attributes]
    first = next(d for d in theirs if d["id"] == "d1")
    assert first["metadata"]["provenance"] == "part-0000.jsonl.gz:2"
    assert list(a.streams[0]["removed_by"].values()) == list(b.streams[0]["removed_by"].values())[:3]


def test_dolma_errors_point_into_the_jsonpath(corpus: Path) -> None:
    unsupported = DOLMA.format(root=corpus).replace("@.q__t__lang[0][2]", "@.q__t__lang[-1][2]")
    path = write_recipe(corpus / "dolma_bad2.yaml", unsupported)
    with pytest.raises(ConfigError, match=r"dolma_bad2.yaml:14:\d+: JSONPath filter: negative index"):
        load_recipe(str(path))
    quoted = DOLMA.format(root=corpus).replace(
        '"$.attributes[?(@.q__t__lang[0][2] >= 0.5)]"', "'$.metadata[?(@.lang == \"en\")]'"
    )
    path = write_recipe(corpus / "dolma_bad3.yaml", quoted)
    with pytest.raises(ConfigError, match=r"dolma_bad3.yaml:14:\d+: JSONPath filter: double-quoted string"):
        load_recipe(str(path))


def test_dolma_output_compression_maps_to_format(corpus: Path) -> None:
    text = DOLMA.format(root=corpus).replace(
        "    span_replacement:", "    compression: {output: zst}\n    span_replacement:"
    )
    recipe = load_recipe(str(write_recipe(corpus / "dolma_zst.yaml", text)))
    assert recipe.streams[0].output.format == "jsonl.zst"
    plain = write_recipe(corpus / "dolma_gz.yaml", DOLMA.format(root=corpus))
    assert load_recipe(str(plain)).streams[0].output.format == "jsonl.gz"


def test_two_streams_writing_the_same_parts_are_refused(corpus: Path) -> None:
    one = recipe(corpus, "t.pass > 2").split("streams:\n", 1)[1]
    text = "streams:\n" + one + one.replace("name: web", "name: again")
    with pytest.raises(ConfigError, match=r"web/web/part-0000.json and again/web/part-0000.json would write"):
        mix.resolve(load_recipe(str(write_recipe(corpus / "twice.yaml", text))))
