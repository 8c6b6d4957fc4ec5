"""C4 rules: each line rule and document rule at its edge, and the span contract (str indices, no newlines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolma_kit.documents import Document
from dolma_kit.errors import DolmaKitError
from dolma_kit.taggers.base import Span
from dolma_kit.taggers.c4 import DOCUMENT_ATTRIBUTES, LINE_REASONS, C4Config, C4Tagger
from dolma_kit.taggers.registry import build_tagger

BAD_WORDS = Path(__file__).resolve().parents[1] / "fixtures" / "quality" / "bad_words.txt"

#: five kept lines of at least five words, one sentence each (three are the smallest document that passes)
GOOD = [
    "The river rose slowly after the long rain.",
    "Farmers moved their animals to higher ground.",
    "Nobody in the valley had seen such water before!",
    "Would the old stone bridge hold until morning?",
    'Her grandmother only said "it held in my time."',
]


def tag(text: str, **config: object) -> list[Span]:
    return C4Tagger(C4Config(**config)).predict(Document(id="d", text=text))


def doc_scores(spans: list[Span]) -> dict[str, float]:
    return {s.type: s.score for s in spans if s.type in DOCUMENT_ATTRIBUTES}


def line_spans(text: str, spans: list[Span]) -> list[tuple[str, str]]:
    return [(s.type, text[s.start : s.end]) for s in spans if s.type in LINE_REASONS]


def test_good_document_passes() -> None:
    text = "\n".join(GOOD)
    spans = tag(text)
    assert line_spans(text, spans) == []
    scores = doc_scores(spans)
    assert scores == {
        "has_lorem_ipsum": 0.0,
        "has_curly_brace": 0.0,
        "too_few_sentences": 0.0,
        "line_count": 5.0,
        "removed_line_fraction": 0.0,
        "sentence_count": 5.0,
        "pass": 1.0,
    }
    assert {s.type for s in spans} <= set(C4Tagger().attribute_names())


# --- line rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("These five words end here.", None),
        ("These five words end here!", None),
        ("These five words end here?", None),
        ('She said "five words end here."', None),
        ("She said “five words end here.”", None),
        ("These five words end here", "line_no_terminal_punct"),
        ("These five words end here:", "line_no_terminal_punct"),
        ("These five words end here…", "line_no_terminal_punct"),
        ("And then the story goes on...", "line_no_terminal_punct"),  # C4's code drops "..." endings
        ("She said ‘five words end here’", "line_no_terminal_punct"),
        ("Only four words here.", "line_too_few_words"),  # C4's code: at least 5 words
        ("Two words.", "line_too_few_words"),
        ("One.", "line_too_few_words"),
        ("A cited line is here.[1]", None),
        ("A cited line is here.[citation needed]", None),
        ("A cited line is here.[Citation Needed]", "line_no_terminal_punct"),
        ("Please enable JavaScript to continue.", "line_javascript"),
        ("See javascript:void(0) for more details.", "line_javascript"),
        ("Read our Privacy Policy for details.", "line_policy"),
        ("By continuing you accept the terms of use.", "line_policy"),
        ("This site uses cookies to work.", "line_policy"),
        ("We use cookies, as do most sites.", "line_policy"),
        ("Read about our use of cookies here.", "line_policy"),
        ("Our cookie policy has changed again.", "line_policy"),
        ("Short line", "line_no_terminal_punct"),  # several reasons: the first in C4's order wins
    ],
)
def test_line_rules(line: str, reason: str | None) -> None:
    assert C4Tagger().line_reason(line) == reason


def test_min_words_per_line_edge() -> None:
    tagger = C4Tagger(C4Config(min_words_per_line=5))
    assert tagger.line_reason("one two three four five.") is None
    assert tagger.line_reason("one two three four.") == "line_too_few_words"


def test_max_word_length_edge() -> None:
    tagger = C4Tagger(C4Config(max_word_length=10))
    assert tagger.line_reason("a wordlength is ok here.") is None  # 10 characters
    assert tagger.line_reason("a wordlengths is too long.") == "line_too_long_word"  # 11


def test_dropped_line_spans_exclude_newlines_and_use_str_indices() -> None:
    text = "Grüße aus München, liebe Freunde.\nnur zwei.\n\nMenü 🍲 ohne Punkt\n   \nEnde gut, alles ist gut!"
    spans = tag(text)
    assert line_spans(text, spans) == [
        ("line_too_few_words", "nur zwei."),
        ("line_no_terminal_punct", "Menü 🍲 ohne Punkt"),
    ]
    assert all("\n" not in text[s.start : s.end] for s in spans if s.type in LINE_REASONS)
    assert doc_scores(spans)["line_count"] == 4.0  # blank and whitespace-only lines are not lines
    assert doc_scores(spans)["removed_line_fraction"] == 0.5


def test_crlf_line_spans_exclude_the_carriage_return() -> None:
    text = "\r\n".join([*GOOD, "no end mark here", "Two words."]) + "\r\n"
    spans = tag(text)
    assert line_spans(text, spans) == [
        ("line_no_terminal_punct", "no end mark here"),
        ("line_too_few_words", "Two words."),
    ]
    assert doc_scores(spans)["pass"] == 1.0


def test_trailing_newline_and_last_line() -> None:
    text = "\n".join(GOOD) + "\nlast line without end"
    spans = tag(text)
    last = [s for s in spans if s.type in LINE_REASONS]
    assert [(s.start, s.end) for s in last] == [(len(text) - 21, len(text))]


# --- document rules ------------------------------------------------------------------------------------


def test_min_sentences_edge() -> None:
    assert doc_scores(tag("\n".join(GOOD[:3])))["pass"] == 1.0  # C4's code: at least 3 sentences
    two = doc_scores(tag("\n".join(GOOD[:2])))
    assert (two["sentence_count"], two["too_few_sentences"], two["pass"]) == (2.0, 1.0, 0.0)
    # dropped lines do not count, however many sentences they hold
    scores = doc_scores(tag("\n".join([*GOOD[:2], "One. Two. Three. Four. Five. Six and no end"])))
    assert scores["sentence_count"] == 2.0
    assert scores["pass"] == 0.0


def test_sentences_inside_a_line_count() -> None:
    text = 'It rained. Then it poured! Was it over? "No." It was not… Still raining.'
    assert doc_scores(tag(text))["sentence_count"] == 5.0
    assert doc_scores(tag(text))["pass"] == 1.0
    assert doc_scores(tag(text, min_sentences=6))["pass"] == 0.0


def test_lorem_ipsum_anywhere_drops_the_document() -> None:
    for text in ["\n".join([*GOOD, "Lorem Ipsum dolor"]), "\n".join([*GOOD, "see LOREM IPSUM."])]:
        scores = doc_scores(tag(text))
        assert (scores["has_lorem_ipsum"], scores["pass"]) == (1.0, 0.0)
    assert doc_scores(tag("\n".join([*GOOD, "lorem and ipsum are apart."])))["pass"] == 1.0


def test_curly_brace_anywhere_drops_the_document() -> None:
    scores = doc_scores(tag("\n".join([*GOOD, "function f() {"])))
    assert (scores["has_curly_brace"], scores["pass"]) == (1.0, 0.0)
    assert doc_scores(tag("\n".join([*GOOD, "a closing brace } alone is fine."])))["pass"] == 1.0


def test_bad_words_file() -> None:
    clean = "\n".join(GOOD)
    assert "has_bad_word" not in doc_scores(tag(clean))  # not checked without a list
    assert doc_scores(tag(clean, bad_words_file=str(BAD_WORDS)))["has_bad_word"] == 0.0
    for extra in ("A zorblax appeared in town.", "The FROB NITZ was loud today.", "glimmerfang!"):
        scores = doc_scores(tag("\n".join([*GOOD, extra]), bad_words_file=str(BAD_WORDS)))
        assert (scores["has_bad_word"], scores["pass"]) == (1.0, 0.0), extra
    # whole words only
    scores = doc_scores(
        tag("\n".join([*GOOD, "Zorblaxes and frob nitzy things."]), bad_words_file=str(BAD_WORDS))
    )
    assert scores["has_bad_word"] == 0.0
    with pytest.raises(DolmaKitError, match="does not exist"):
        C4Tagger(C4Config(bad_words_file=str(BAD_WORDS) + ".missing"))


def test_document_with_no_kept_line_fails_even_without_a_sentence_minimum() -> None:
    scores = doc_scores(tag("menu\nhome\nabout us", min_sentences=0))
    assert (scores["removed_line_fraction"], scores["pass"]) == (1.0, 0.0)


# --- edge cases ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\n", " \t\r\n\u3000\n"])
def test_empty_and_whitespace_documents(text: str) -> None:
    spans = tag(text)
    assert [s.type for s in spans if s.type in LINE_REASONS] == []
    scores = doc_scores(spans)
    assert (scores["line_count"], scores["sentence_count"], scores["pass"]) == (0.0, 0.0, 0.0)
    assert all((s.start, s.end) == (0, len(text)) for s in spans)


def test_single_very_long_line() -> None:
    sentence = "This sentence is repeated on one very long line. "
    text = sentence * 4000
    scores = doc_scores(tag(text))
    assert (scores["line_count"], scores["sentence_count"], scores["pass"]) == (1.0, 4000.0, 1.0)
    giant = "x" * 1001 + " ends here."
    assert line_spans(giant, tag(giant)) == [("line_too_long_word", giant)]


def test_scripts_without_latin_punctuation() -> None:
    # C4 targets English: a Chinese line ends in "。" (not terminal by default) and has no spaces
    text = "这是一个中文句子。\nЭто русское предложение из шести слов."
    assert line_spans(text, tag(text)) == [("line_no_terminal_punct", "这是一个中文句子。")]
    assert line_spans(text, tag(text, terminal_punctuation=(".", "。"))) == [
        ("line_too_few_words", "这是一个中文句子。")
    ]


def test_registry_spec() -> None:
    prefix, tagger = build_tagger('c4:min_sentences=5,min_words_per_line=3,terminal_punctuation=.|!|?|"|。')
    assert prefix == "c4"
    assert isinstance(tagger, C4Tagger)
    assert (tagger.config.min_sentences, tagger.config.min_words_per_line) == (5, 3)
    assert tagger.line_reason("这是 一个 中文句子。") is None


def test_defaults_are_the_code_that_built_c4() -> None:
    """TFDS c4_utils: _MIN_WORDS_PER_LINE = 5, _MIN_NUM_SENTENCES = 3 (datatrove has them swapped)."""
    config = C4Config()
    assert (config.min_words_per_line, config.min_sentences) == (5, 3)


def test_javascript_and_policy_lines_in_a_document() -> None:
    text = "\n".join(
        [GOOD[0], "Please enable JavaScript to continue.", *GOOD[1:], "We use cookies on this site."]
    )
    spans = tag(text)
    assert line_spans(text, spans) == [
        ("line_javascript", "Please enable JavaScript to continue."),
        ("line_policy", "We use cookies on this site."),
    ]
    assert doc_scores(spans)["pass"] == 1.0


def test_ellipsis_lines_can_be_kept() -> None:
    assert C4Tagger(C4Config(drop_ellipsis_lines=False)).line_reason("And then the story goes on...") is None
