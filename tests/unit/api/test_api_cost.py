"""The models list's credit formulas, read leniently: one unusable formula costs only its own model."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_pixverse._api.cost import CreditFormula, estimate_cost, parse_formula, parse_model_list
from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError
from airflow_provider_pixverse.sandbox.voices_and_models import models_json


def with_formula(model: str, **formula: Any) -> dict[str, Any]:
    data = models_json()
    for group in data["provider_groups"]:
        for entry in group["models"]:
            if entry["model"] == model:
                entry["credit_formula"] = {**entry["credit_formula"], **formula}
    return data


@pytest.mark.parametrize(
    "formula",
    [
        {"unit_credits": -1},
        {"unit_credits": "1"},
        {"unit_characters": 0},
        {"unit_characters": 2.5},
        {"unit_characters": None},
        {"round_up": "no"},
        {"round_up": 1},
        {"round_up": None},
    ],
)
def test_an_unusable_formula_makes_only_its_own_models_cost_unknown(formula: dict[str, Any]) -> None:
    catalogue = parse_model_list(with_formula("eleven-v3", **formula))
    v3 = catalogue.limits("eleven-v3")
    assert v3.formula is None and v3.max_characters == 5_000
    assert v3.formula_problem is not None and "'eleven-v3'" in v3.formula_problem
    assert list(catalogue.formula_problems) == ["eleven-v3"]
    assert catalogue.limits("speech-2.8-hd").formula == CreditFormula(50, 1.0, True)
    estimate = estimate_cost(v3, ["x" * 10])
    assert estimate.credits is None
    with pytest.raises(PixVerseInvalidInputError, match=r"unusable credit_formula.*nothing was sent"):
        estimate.refuse_over(10, account="a@b.c")


@pytest.mark.parametrize(
    ("round_up", "expected"),
    [(True, True), (False, False), ("false", False), ("False", False), ("true", True), (" TRUE ", True)],
)
def test_round_up_is_read_strictly(round_up: object, expected: bool) -> None:
    hd = parse_model_list(with_formula("speech-2.8-hd", round_up=round_up)).limits("speech-2.8-hd")
    assert hd.formula_problem is None and hd.formula == CreditFormula(50, 1.0, expected)
    assert hd.formula.credits_for(75) == (2 if expected else 1.5)


def test_no_formula_is_not_a_problem_and_a_formula_that_is_no_object_is() -> None:
    assert parse_formula(None, model="m") == (None, None)
    assert parse_formula({"unit_characters": 50, "unit_credits": 1}, model="m")[0] == CreditFormula(50, 1.0, True)
    formula, problem = parse_formula("x" * 10_000, model="m")
    assert formula is None and problem is not None and len(problem) < 400  # a huge value is cut short
