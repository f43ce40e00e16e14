"""Credits: the models' credit_formula, what each clip cost, and a balance that refuses creates (412)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Api

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

PER_1000 = {
    "speech-2.8-hd": 20,
    "speech-2.8-turbo": 10,
    "eleven-multilingual-v2": 20,
    "eleven-v3": 20,
    "eleven-turbo-v2.5": 10,
}


def formulas(api: Api) -> dict[str, dict[str, Any]]:
    groups = api.get("/speech/models").json()["provider_groups"]
    return {m["model"]: m["credit_formula"] for g in groups for m in g["models"]}


def test_models_answer_the_credit_formula(api: Api) -> None:
    for model, formula in formulas(api).items():
        assert set(formula) == {"unit_characters", "unit_credits", "round_up"}
        assert formula["unit_characters"] == 50 and formula["round_up"] is True
        assert formula["unit_credits"] * 1000 / formula["unit_characters"] == PER_1000[model], model


@pytest.mark.parametrize("length", [1, 26, 50, 51, 1000, 1001])
@pytest.mark.parametrize("model", sorted(PER_1000))
def test_each_clip_records_what_the_formula_charges(api: Api, model: str, length: int) -> None:
    formula = formulas(api)[model]
    clip = api.create(text="x" * length, model=model).json()
    expected = math.ceil(length / formula["unit_characters"]) * formula["unit_credits"]
    assert clip["credits"] == expected
    assert clip["credits"] == pytest.approx(PER_1000[model] * math.ceil(length / 50) * 50 / 1000)


def test_the_reference_example_costs_one_credit(api: Api) -> None:
    assert api.create(text="May the Force be with you.").json()["credits"] == 1


def test_a_create_beyond_the_balance_is_a_412(sandbox: PixVerseSandbox, api: Api) -> None:
    assert sandbox.credits_left() is None  # unlimited until told otherwise
    sandbox.set_credits(3)
    assert api.create(text="x" * 100).status_code == 200  # 2 credits
    assert sandbox.credits_left() == 1
    refused = api.create(text="x" * 100)
    assert refused.status_code == 412
    assert refused.json() == {"error": "Not enough credits: 1 credits left, 2 needed", "code": 412}
    assert sandbox.credits_left() == 1  # a refused create costs nothing
    assert api.create(text="x" * 50).status_code == 200
    assert sandbox.credits_left() == 0
    assert len(api.get("/speech/").json()["data"]) == 2


def test_balances_are_per_account(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.set_credits(0, email="broke@example.com")
    assert api.create(email="broke@example.com").status_code == 412
    assert api.create(email="rich@example.com").status_code == 200
    sandbox.set_credits(None, email="broke@example.com")
    assert api.create(email="broke@example.com").status_code == 200


def test_seeding_a_clip_charges_nothing(sandbox: PixVerseSandbox) -> None:
    sandbox.set_credits(0)
    assert sandbox.add_clip(text="x" * 500)["credits"] == 10
    assert sandbox.credits_left() == 0


def test_credits_over_the_control_surface(sandbox: PixVerseSandbox, api: Api) -> None:
    url = f"{sandbox.url}/_sandbox/credits"
    assert requests.post(url, json={"credits": 1.5, "email": "c@example.com"}, timeout=10).json() == {
        "email": "c@example.com",
        "credits": 1.5,
    }
    assert api.create(model="speech-2.8-turbo", email="c@example.com").json()["credits"] == 0.5
    assert requests.get(url, params={"email": "c@example.com"}, timeout=10).json()["credits"] == 1
