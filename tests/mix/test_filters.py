"""The filter language: every operator, precedence, functions, name resolution and error positions."""

from __future__ import annotations

import pytest

from dolma_kit.config import ConfigError
from dolma_kit.mix.filters import Location, Resolver, compile_filter, parse_filter, unparse

NAMES = [
    "exp__gopher_v1__pass",
    "exp__gopher_v1__word_count",
    "exp__ft_lang_id__en",
    "exp__pii__email_address",
    "exp__c4__pass",
    "dd__minhash__duplicate",
    "bff_duplicate_paragraph_spans",
]
RESOLVER = Resolver(NAMES, {"lid": "exp.ft_lang_id", "mh": "dd__minhash"})

ATTRS = {
    "exp__gopher_v1__pass": [[0, 100, 1.0]],
    "exp__gopher_v1__word_count": [[0, 100, 120.0]],
    "exp__ft_lang_id__en": [[0, 100, 0.4]],
    "exp__pii__email_address": [[3, 10, 1.0], [20, 30, 0.3], [40, 50, 0.9]],
    "exp__c4__pass": [[0, 100, 0.0]],
}  # dd__minhash__duplicate is absent: no score


def ev(expr: str, attrs: dict | None = None) -> bool:
    return compile_filter(parse_filter(expr, RESOLVER))(ATTRS if attrs is None else attrs)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("gopher.word_count == 120", True),
        ("gopher.word_count == 121", False),
        ("gopher.word_count != 121", True),
        ("gopher.word_count != 120", False),
        ("lid.en < 0.5", True),
        ("lid.en < 0.4", False),
        ("lid.en <= 0.4", True),
        ("lid.en <= 0.39", False),
        ("lid.en > 0.39", True),
        ("lid.en > 0.4", False),
        ("lid.en >= 0.4", True),
        ("lid.en >= 0.41", False),
        ("0.5 > lid.en", True),  # a number on the left
        ("gopher.word_count > -1", True),
        ("gopher.word_count == 1.2e2", True),
    ],
)
def test_comparison_operators(expr: str, expected: bool) -> None:
    assert ev(expr) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("gopher.pass and c4.pass", False),
        ("gopher.pass or c4.pass", True),
        ("not c4.pass", True),
        ("not gopher.pass", False),
        ("gopher.pass == true", True),
        ("c4.pass == false", True),
        ("true", True),
        ("false or gopher.pass == 1", True),
        # precedence: not > and > or
        ("gopher.pass or c4.pass and false", True),  # gopher.pass or (c4.pass and false)
        ("(gopher.pass or c4.pass) and false", False),
        ("not c4.pass and gopher.pass", True),  # (not c4.pass) and gopher.pass
        ("not (c4.pass and gopher.pass)", True),
        ("not not gopher.pass", True),
        ("c4.pass and gopher.pass or lid.en < 0.5", True),  # (c4.pass and gopher.pass) or ...
    ],
)
def test_boolean_operators_and_precedence(expr: str, expected: bool) -> None:
    assert ev(expr) is expected


def test_precedence_shape() -> None:
    node = parse_filter("gopher.pass or c4.pass and not lid.en > 0.5", RESOLVER)
    assert unparse(node) == "exp__gopher_v1__pass or (exp__c4__pass and not exp__ft_lang_id__en > 0.5)"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("minhash.duplicate == 0", False),  # absent: every comparison is false, as SQL NULL
        ("minhash.duplicate != 0", False),
        ("minhash.duplicate", False),
        ("not minhash.duplicate", True),
        ("not exists(minhash.duplicate)", True),
        ("count(minhash.duplicate) == 0", True),
        ("exists(pii.email_address)", True),
        ("count(pii.email_address) == 3", True),
        ("count(pii.email_address >= 0.5) == 2", True),
        ("count(0.5 <= pii.email_address) == 2", True),
        ("any(pii.email_address < 0.5)", True),
        ("any(pii.email_address > 1)", False),
        ("any(minhash.duplicate)", False),
        ("all(pii.email_address > 0.2)", True),
        ("all(pii.email_address > 0.5)", False),
        ("sum(pii.email_address) == 2.2", True),
        ("max(pii.email_address) == 1", True),
        ("min(pii.email_address) == 0.3", True),
        ("max(minhash.duplicate) >= 0", False),
        ("chars(pii.email_address) == 27", True),
        ("score(pii.email_address, 1) == 0.3", True),
        ("score(pii.email_address) == 1", True),
        ("score(pii.email_address, 5) < 10", False),
        ("pii.email_address == 1", True),  # bare: the first span's score
    ],
)
def test_functions_and_absent_attributes(expr: str, expected: bool) -> None:
    assert ev(expr) is expected


@pytest.mark.parametrize(
    ("ref", "full"),
    [
        ("pass", None),  # ambiguous: gopher and c4
        ("gopher.pass", "exp__gopher_v1__pass"),  # versioned tagger matched without its _v1
        ("gopher_v1.pass", "exp__gopher_v1__pass"),
        ("exp.gopher_v1.pass", "exp__gopher_v1__pass"),
        ("exp__gopher_v1__pass", "exp__gopher_v1__pass"),
        ("lid.en", "exp__ft_lang_id__en"),  # alias with a dot
        ("mh.duplicate", "dd__minhash__duplicate"),  # alias with __
        ("bff_duplicate_paragraph_spans", "bff_duplicate_paragraph_spans"),  # Dolma-style bare name
        ("en", "exp__ft_lang_id__en"),
    ],
)
def test_name_resolution(ref: str, full: str | None) -> None:
    assert RESOLVER.resolve(ref)[0] == full


def test_backquoted_full_name() -> None:
    assert ev("`exp__gopher_v1__pass` == 1") is True


@pytest.mark.parametrize(
    ("expr", "col", "message"),
    [
        ("gopher.pas == 0", 5, "unknown attribute 'gopher.pas' (did you mean exp.gopher_v1.pass?)"),
        ("pass == 1", 5, "'pass' is ambiguous: exp.c4.pass, exp.gopher_v1.pass"),
        ("gopher.pass ==", 19, "expected a number, true/false, an attribute or '(', found end of expression"),
        ("(gopher.pass", 17, "expected ')', found end of expression"),
        ("gopher.pass && c4.pass", 17, "unexpected character '&' (use and/or/not)"),
        ("lid.en < 0.5 < 1", 18, "comparisons do not chain"),
        ("", 5, "empty expression"),
        ("1 and gopher.pass", 5, "a number where true/false is needed"),
        ("gopher.pass or count(pii.email_address)", 20, "a number where true/false is needed"),
        ("gopher.pass < true", 19, "type error: cannot compare an attribute with a boolean using '<'"),
        ("count(3) > 1", 11, "type error: count() takes count(attr) or count(attr OP number)"),
        ("all(pii.email_address) > 1", 9, "type error: all() takes all(attr OP number)"),
        ("sum(lid.en > 1) > 1", 9, "type error: sum() takes sum(attr)"),
        ("score(lid.en, 0.5) > 1", 11, "type error: score() takes"),
        ("median(lid.en) > 1", 5, "unknown function 'median'"),
        ("lid.en < 'x'", 14, "unexpected character"),
    ],
)
def test_errors_point_at_file_line_column(expr: str, col: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_filter(expr, RESOLVER, Location("mixers/x.yaml", 7, 5))
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"mixers/x.yaml:7:{col}: "), first
    assert message in first
    assert str(info.value).splitlines()[1].strip() == expr.strip()  # the expression is shown under it


@pytest.mark.parametrize(
    ("expr", "col"),
    [
        ("(" * 150 + "gopher.pass" + ")" * 150, 5 + 100),  # the 101st '(' is where it goes too deep
        ("not " * 5000 + "gopher.pass", 5 + 4 * 100),
        ("not (" * 60 + "gopher.pass" + ")" * 60, 5 + 5 * 50),  # 'not' and '(' both count
        ("count(" * 120 + "lid.en" + ")" * 120 + " > 0", 5 + 6 * 100),
    ],
)
def test_nesting_too_deep_is_a_recipe_error(expr: str, col: int) -> None:
    """Deep nesting is refused with the position, before the parser could reach Python's recursion limit."""
    with pytest.raises(ConfigError) as info:
        parse_filter(expr, RESOLVER, Location("mixers/x.yaml", 7, 5))
    first = str(info.value).splitlines()[0]
    assert first == f"mixers/x.yaml:7:{col}: expression nested deeper than 100 levels", first


@pytest.mark.parametrize(
    "expr",
    [
        "(" * 100 + "gopher.pass" + ")" * 100,
        "not " * 100 + "gopher.pass",
        "not (" * 50 + "gopher.pass" + ")" * 50,
    ],
)
def test_nesting_at_the_limit_parses_compiles_and_runs(expr: str) -> None:
    node = parse_filter(expr, RESOLVER)
    assert compile_filter(node)(ATTRS) is True  # an even number of 'not's
    assert "exp__gopher_v1__pass" in unparse(node)


@pytest.mark.parametrize(
    ("expr", "col"),
    [
        ("gopher.word_count < 1e999999", 25),
        ("gopher.word_count > -1e999", 26),
        ("gopher.word_count < " + "9" * 400, 25),
        ("score(pii.email_address, 1e400) > 0", 30),
    ],
)
def test_number_out_of_range_is_a_recipe_error(expr: str, col: int) -> None:
    """A literal too large for a float would silently become inf (and compare true with everything)."""
    with pytest.raises(ConfigError) as info:
        parse_filter(expr, RESOLVER, Location("mixers/x.yaml", 7, 5))
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"mixers/x.yaml:7:{col}: number out of range: "), first
