"""mixers/demo.yaml and mixers/olmo-like.yaml: valid recipes whose every name resolves against the attribute
names our taggers and dedup stages declare (the same names their `attributes_schema.json` files list)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolma_kit.dedup.exact_passes import attribute_names
from dolma_kit.dedup.minhash_stage import ATTRIBUTE_NAMES
from dolma_kit.demo.quick import TAGGERS
from dolma_kit.mix.filters import Resolver, parse_filter
from dolma_kit.mix.recipe import load_recipe
from dolma_kit.taggers.stage import TagConfig, schema

MIXERS = Path(__file__).resolve().parents[2] / "mixers"


def tagged(experiment: str, taggers: list[str]) -> set[str]:
    names: set[str] = set()
    config = TagConfig(documents=["unused"], experiment=experiment, taggers=taggers)
    for tagger in schema(config)["taggers"].values():
        names.update(tagger["attributes"])
    return names


def experiments() -> dict[str, set[str]]:
    return {
        "demo": tagged("demo", TAGGERS),
        "quality": tagged("quality", ["ft_lang_id", "gopher", "c4", "pii", "char_length"]),
        "dedup_url": set(attribute_names("dedup_url", "url").values()),
        "dedup_para": set(attribute_names("dedup_para", "paragraphs").values()),
        "dedup_mh": {f"dedup_mh__minhash__{n}" for n in ATTRIBUTE_NAMES},
    }


@pytest.mark.parametrize("name", ["demo.yaml", "olmo-like.yaml"])
def test_shipped_recipe_resolves(name: str) -> None:
    known = experiments()
    recipe = load_recipe(str(MIXERS / name))
    assert len(recipe.streams) >= 3
    for stream in recipe.streams:
        resolver = Resolver(set().union(*(known[e] for e in stream.attributes)), recipe.aliases)
        for rule in stream.include + stream.exclude:
            parse_filter(rule.expr, resolver, rule.where)
        for rep in stream.replace:
            assert resolver.resolve(rep.attribute)[0] is not None, rep
    rates = {s.name: s.sample for s in recipe.streams}
    assert rates["wiki"] == 2.0 and rates["forum"] < 1
