"""Recipes: bad ones fail before any data is read, at file:line:col; Dolma configs translate to ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolma_kit.config import ConfigError
from dolma_kit.errors import DolmaKitError
from dolma_kit.mix import stage as mix
from dolma_kit.mix.dolma import jsonpath_to_expr
from dolma_kit.mix.recipe import load_recipe
from tests.mix.helpers import output_bytes, write_recipe, write_schema, write_source
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
    with pytest.raises(ConfigError, match=r"no attributes of experiment 'nope' at .*attributes/nope"):
        mix.resolve(load_recipe(str(path)))


def test_names_from_the_first_attribute_lines_without_a_schema(tmp_path: Path) -> None:
    write_source(tmp_path, "web", [{"id": "a", "text": "x"}], {"d": [{"d__t__score": [[0, 1, 0.5]]}]})
    ok = write_recipe(tmp_path / "r.yaml", recipe(tmp_path, "t.score < 0.1").replace("[q]", "[d]").replace("t.pass == 0", "t.score > 2"))  # fmt: skip
    (plan,), _ = mix.resolve(load_recipe(str(ok)))
    assert plan.experiments == (("d", None),)
    write_schema(tmp_path, "other", ["other__x__y"])


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


def test_dolma_config_gives_the_same_bytes_as_the_equivalent_recipe(corpus: Path) -> None:
    dolma = load_recipe(str(write_recipe(corpus / "dolma.yaml", DOLMA.format(root=corpus))))
    assert dolma.translated_from == "dolma"
    assert [r.expr for r in dolma.streams[0].exclude] == [
        "exists(`q__t__pass`) and count(`q__t__pass`) > 0 and `q__t__pass` < 0.5",
        "exists(`q__t__email`) and count(`q__t__email`) > 1",
    ]
    ours = load_recipe(str(write_recipe(corpus / "ours.yaml", OURS.format(root=corpus))))
    a, b = mix.mix(dolma, processes=1), mix.mix(ours, processes=1)
    parts = {k: v for k, v in output_bytes(corpus / "dolma_out").items() if not k.startswith("_mix")}
    assert len(parts) > 4
    assert parts == {k: v for k, v in output_bytes(corpus / "ours_out").items() if not k.startswith("_mix")}
    assert list(a.streams[0]["removed_by"].values()) == list(b.streams[0]["removed_by"].values())


@pytest.mark.parametrize(
    ("query", "expr"),
    [
        ("$.attributes[?(@.a__b__c[0][2] > 0.5)]", "`a__b__c` > 0.5"),
        ("$@.attributes[?(@.x == 1)]", "`x` == 1"),
        ("$.attributes[?(@.x[2][2] <= 1 || !@.y)]", "score(`x`, 2) <= 1 or not exists(`y`)"),
        ("$.attributes[?(0.5 > @.x[0][2])]", "0.5 > `x`"),
        ("$.attributes[?((@.x[0][2] > 1) && @.y[0])]", "(`x` > 1) and count(`y`) > 0"),
    ],
)
def test_jsonpath_translation(query: str, expr: str) -> None:
    assert jsonpath_to_expr(query, lambda offset, msg: ValueError(offset, msg)) == expr


def test_dolma_errors_point_into_the_jsonpath(corpus: Path) -> None:
    text = DOLMA.format(root=corpus).replace("@.q__t__lang[0][2]", "@.q__t__lnag[0][2]")
    path = write_recipe(corpus / "dolma_bad.yaml", text)
    with pytest.raises(DolmaKitError) as info:
        mix.resolve(load_recipe(str(path)))
    assert str(info.value).startswith(f"{path}:14:29: unknown attribute 'q__t__lnag'"), str(info.value)
    unsupported = DOLMA.format(root=corpus).replace("@.q__t__lang[0][2]", "@.q__t__lang[0][0]")
    path = write_recipe(corpus / "dolma_bad2.yaml", unsupported)
    with pytest.raises(ConfigError, match=r":14:27: only a span's score \(\[i\]\[2\]\) can be read"):
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
