"""The pieces of a text-to-speech request that need no I/O: the content key, the split, the cost, the job state."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest

from airflow_provider_pixverse._api.content import audio_settings, content_key, normalise_text
from airflow_provider_pixverse._api.cost import (
    CreditFormula,
    ModelLimits,
    estimate_cost,
    parse_model_list,
)
from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError, PixVerseResponseError
from airflow_provider_pixverse._api.speech_job import PartState, SpeechJob
from airflow_provider_pixverse._api.split import split_parts, split_text
from airflow_provider_pixverse.sandbox.voices_and_models import models_json

VOICE = "minimax_english_radiant_girl"


# -- the content key -------------------------------------------------------------------------


def test_the_key_ignores_what_does_not_change_the_audio() -> None:
    key = content_key("Hello there.", VOICE, None, {"speed": 1})
    assert key == content_key("  Hello there.\r\n", VOICE, "speech-2.8-hd", {"speed": 1.0, "reply_url": "https://x"})
    assert key == content_key("Hello there.", VOICE, None, {"speed": 1, "max_jobs": 3, "email": "a@b.c"})
    assert re.fullmatch(r"[0-9a-f]{64}", key)


@pytest.mark.parametrize(
    ("text", "voice", "model", "settings"),
    [
        ("Hello there!", VOICE, None, {"speed": 1}),
        ("Hello there.", "minimax_english_calm_narrator", None, {"speed": 1}),
        ("Hello there.", VOICE, "speech-2.8-turbo", {"speed": 1}),
        ("Hello there.", VOICE, None, {"speed": 1.1}),
        ("Hello there.", VOICE, None, {"speed": 1, "emotion": "calm"}),
        ("Hello there.", VOICE, None, {"speed": 1, "language_code": "en"}),
    ],
)
def test_the_key_changes_with_what_changes_the_audio(
    text: str, voice: str, model: str | None, settings: dict[str, object]
) -> None:
    assert content_key("Hello there.", VOICE, None, {"speed": 1}) != content_key(text, voice, model, settings)


def test_normalised_text() -> None:
    assert normalise_text("\ufeffCafe\u0301 \r\nnoir  \n\n\tend  ") == "\ufeffCafé\nnoir\n\n\tend"
    assert normalise_text("one\rtwo") == "one\ntwo"
    assert audio_settings({"pitch": 2.0, "use_speaker_boost": True, "style": None, "reply_ref": "x"}) == {
        "pitch": 2,
        "use_speaker_boost": True,
    }


def test_normalising_is_linear_and_does_what_it_did() -> None:
    # A run of spaces not followed by a line end used to cost the square of its length (hours for 4 MiB).
    text = "a" + " " * 1_000_000 + "b \t\n" + "\u00a0" * 1_000_000 + "\nc"
    assert normalise_text(text) == "a" + " " * 1_000_000 + "b\n\nc"
    old_trailing_space = re.compile(r"[^\S\n]+\n")
    rng = random.Random(7)
    for _ in range(3_000):
        sample = "".join(rng.choice(" \t\n\u00a0\u3000a.") for _ in range(rng.randint(0, 30)))
        old = old_trailing_space.sub("\n", unicodedata.normalize("NFC", sample)).strip()
        assert normalise_text(sample) == old, repr(sample)


# -- the split -------------------------------------------------------------------------------


def check_parts(text: str, limit: int) -> list[str]:
    parts = split_parts(text, limit)
    assert all(0 < len(part) <= limit and part == part.strip() for part in parts)
    assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", text)  # nothing lost, nothing added
    return parts


def test_a_text_that_fits_is_one_part() -> None:
    assert split_text("  short  ", 10) == [(2, 7)]
    assert split_parts("", 10) == []


def test_paragraphs_first() -> None:
    text = "A" * 40 + ". First.\n\n" + "B" * 30 + ". Second one.\n\n" + "C" * 20 + "."
    parts = check_parts(text, 100)
    assert parts == ["A" * 40 + ". First.\n\n" + "B" * 30 + ". Second one.", "C" * 20 + "."]


def test_a_paragraph_break_that_leaves_the_part_under_half_full_is_not_taken() -> None:
    text = "Short.\n\n" + "Sentence one is here. " * 8 + "Last."
    parts = check_parts(text, 100)
    assert parts[0].startswith("Short.\n\nSentence one") and parts[0].endswith("here.")
    assert len(parts[0]) >= 50


def test_sentences_when_no_paragraph_break_fits() -> None:
    text = "One sentence here. Another one follows! Is this a third? Yes… and " + "more words " * 10
    parts = check_parts(text, 60)
    assert parts[0] == "One sentence here. Another one follows! Is this a third?"


def test_cjk_sentences_end_without_a_space() -> None:
    text = "这是第一句话。" * 6 + "这是最后一句话\uff01"
    parts = check_parts(text, 20)
    assert all(part.endswith(("。", "\uff01")) for part in parts)


def test_words_when_no_sentence_ends_in_reach_and_a_word_longer_than_the_limit_is_cut() -> None:
    text = "word " * 30
    parts = check_parts(text, 23)
    assert all(not part.startswith(" ") and part.split(" ") == ["word"] * len(part.split(" ")) for part in parts)
    assert check_parts("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    with pytest.raises(PixVerseInvalidInputError):
        split_text("x", 0)


def test_twenty_five_thousand_characters_on_a_ten_thousand_character_model() -> None:
    paragraph = "The fox jumps over the dog by the river. " * 20
    text = "\n\n".join(f"{n}. {paragraph.strip()}" for n in range(40))[:25_000]
    parts = check_parts(text, 10_000)
    assert len(parts) == 3 and all(len(part) >= 5_000 for part in parts[:-1])


# -- the cost --------------------------------------------------------------------------------


def test_the_sandbox_models_list_and_its_formula() -> None:
    catalogue = parse_model_list(models_json())
    hd = catalogue.limits("speech-2.8-hd")
    assert hd.max_characters == 10_000 and hd.formula == CreditFormula(50, 1.0, True)
    turbo = catalogue.limits("speech-2.8-turbo")
    estimate = estimate_cost(turbo, ["x" * 51, "y" * 50])
    assert estimate.credits == 1.5  # 2 units at 0.5, then 1 unit
    assert estimate.to_json()["part_credits"] == [1, 0.5]
    assert catalogue.limits("eleven-v3").max_characters == 5_000


def test_rounding_down_and_unknown_models() -> None:
    limits = ModelLimits("m", 100, CreditFormula(50, 1, round_up=False))
    assert estimate_cost(limits, ["x" * 75]).credits == 1.5
    catalogue = parse_model_list({"provider_groups": [{"models": [{"model": "new", "max_characters": 7}]}]})
    assert catalogue.limits("new").formula is None and catalogue.limits("new").max_characters == 7
    assert catalogue.limits("speech-2.8-hd").max_characters == 10_000  # the documented table stands in
    with pytest.raises(PixVerseInvalidInputError, match="not in the account's models list"):
        catalogue.limits("no-such-model")
    with pytest.raises(PixVerseResponseError):
        parse_model_list({"models": []})


def test_max_credits() -> None:
    estimate = estimate_cost(ModelLimits("m", 100, CreditFormula(50, 1)), ["x" * 101])
    estimate.refuse_over(3, account="'a@b.c'")
    estimate.refuse_over(None, account="'a@b.c'")
    with pytest.raises(PixVerseInvalidInputError, match=r"about 3 credits .*account 'a@b.c'.*max_credits is 2"):
        estimate.refuse_over(2, account="'a@b.c'")
    unknown = estimate_cost(ModelLimits("m", 100, None), ["x"])
    assert unknown.credits is None
    with pytest.raises(PixVerseInvalidInputError, match="no credit_formula"):
        unknown.refuse_over(100, account="'a@b.c'")


# -- the job state ---------------------------------------------------------------------------


def test_the_job_state_round_trips_as_json() -> None:
    job = SpeechJob("k" * 64, 10_000, {"credits": 3}, parts=[PartState(1, 0, 5, audio_id="a"), PartState(2, 7, 9)])
    again = SpeechJob.from_json(job.to_json())
    assert again == job and [p.index for p in again.pending()] == [1, 2]
    assert SpeechJob.from_json({"version": 99}) is None
    assert SpeechJob.from_json({"version": 1, "parts": "nope"}) is None
    assert SpeechJob.from_json(None) is None
