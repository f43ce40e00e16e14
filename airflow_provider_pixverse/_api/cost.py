"""What a create costs, before it is sent: the models list's ``credit_formula`` and ``max_characters``.

``GET speech/models`` is the source of truth for limits and cost (see the reference). Each model
carries ``credit_formula = {"unit_characters": 50, "unit_credits": 1, "round_up": true}``: a text
costs ``unit_credits`` per started (``round_up``) or whole unit of ``unit_characters`` characters.
A request split into parts is billed part by part, so its estimate is the sum over the parts.
No I/O here: :func:`parse_model_list` reads an answer the hook fetched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from airflow_provider_pixverse._api.create import MODELS
from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError, PixVerseResponseError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


@dataclass(frozen=True)
class CreditFormula:
    """``unit_credits`` per ``unit_characters`` characters, rounded up to whole units or not."""

    unit_characters: int
    unit_credits: float
    round_up: bool = True

    def credits_for(self, characters: int) -> float:
        """The credits a text of ``characters`` characters costs."""
        units = characters / self.unit_characters
        units = math.ceil(units) if self.round_up else units
        return plain_credits(units * self.unit_credits)

    @classmethod
    def from_json(cls, data: object, *, model: str) -> CreditFormula | None:
        """The formula a models list gives, or ``None`` when it gives none or one that cannot be used."""
        return parse_formula(data, model=model)[0]


def parse_formula(data: object, *, model: str) -> tuple[CreditFormula | None, str | None]:
    """A models list entry's ``credit_formula``, leniently: ``(formula, None)``, or ``(None, why it is unusable)``.

    No formula (``None``) is not a problem; one that is there but unusable (not an object, a
    ``unit_characters`` that is not a whole number above 0, a ``unit_credits`` that is not a finite
    number from 0, a ``round_up`` that is neither a boolean nor ``"true"``/``"false"``) makes only
    this model's cost unknown: the reason is returned, never raised, so one bad entry never costs
    the other models of the list.
    """
    if data is None:
        return None, None
    unusable = f"the models list gives model {model!r} an unusable credit_formula {_shown(data)}"
    if not isinstance(data, dict):
        return None, unusable
    unit_characters, unit_credits = data.get("unit_characters"), data.get("unit_credits")
    round_up = _boolean(data.get("round_up", True))
    if not _number(unit_characters) or unit_characters <= 0 or not float(unit_characters).is_integer():
        return None, f"{unusable}: unit_characters must be a whole number above 0"
    if not _number(unit_credits) or unit_credits < 0:
        return None, f"{unusable}: unit_credits must be a number from 0"
    if round_up is None:
        return None, f"{unusable}: round_up must be true or false"
    return CreditFormula(int(unit_characters), float(unit_credits), round_up), None


def _boolean(value: object) -> bool | None:
    """A JSON boolean, or the strings ``"true"``/``"false"`` (any case); ``None`` for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _shown(data: object) -> str:
    """``data`` for a message, cut short: a hostile list may hold a huge value."""
    text = repr(data)
    return text if len(text) <= 200 else text[:200] + "..."


@dataclass(frozen=True)
class ModelLimits:
    """One model's ``max_characters`` and ``credit_formula`` (``None`` when the models list has none usable).

    ``formula_problem`` says why the list's formula could not be used, when it could not.
    """

    model: str
    max_characters: int
    formula: CreditFormula | None
    formula_problem: str | None = None


@dataclass(frozen=True)
class ModelList:
    """The models of ``GET speech/models``, by name."""

    models: Mapping[str, ModelLimits]
    default_model: str | None = None

    @property
    def formula_problems(self) -> dict[str, str]:
        """Why a model's ``credit_formula`` is unusable, by model (those models' costs are unknown)."""
        return {name: found.formula_problem for name, found in self.models.items() if found.formula_problem}

    def limits(self, model: str) -> ModelLimits:
        """The limits of ``model``: from the list, else from the documented table; refused when neither knows it."""
        found = self.models.get(model)
        if found is not None:
            return found
        documented = MODELS.get(model)
        if documented is not None:
            return ModelLimits(model, documented.max_characters, None)
        known = ", ".join(sorted(self.models)) or "none"
        raise PixVerseInvalidInputError(f"model {model!r} is not in the account's models list (known: {known})")


def parse_model_list(data: object) -> ModelList:
    """Read a ``GET speech/models`` answer: ``provider_groups[].models[]``."""
    if not isinstance(data, dict) or not isinstance(data.get("provider_groups"), list):
        raise PixVerseResponseError("the models list has no provider_groups")
    models: dict[str, ModelLimits] = {}
    for group in data["provider_groups"]:
        entries = group.get("models") if isinstance(group, dict) else None
        for entry in entries if isinstance(entries, list) else ():
            limits = _model_limits(entry)
            if limits is not None:
                models[limits.model] = limits
    default = data.get("default_model")
    return ModelList(models, default if isinstance(default, str) else None)


@dataclass(frozen=True)
class CostEstimate:
    """The credits a request is expected to cost: per part, and in all (``None`` when no formula is known)."""

    model: str
    characters: int
    part_characters: tuple[int, ...]
    credits: float | None
    formula: CreditFormula | None
    formula_problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The estimate as it is logged and pushed to XCom."""
        formula = self.formula
        return {
            "model": self.model,
            "characters": self.characters,
            "parts": len(self.part_characters),
            "credits": self.credits,
            "part_credits": None if formula is None else [formula.credits_for(n) for n in self.part_characters],
            "credit_formula": None
            if formula is None
            else {
                "unit_characters": formula.unit_characters,
                "unit_credits": plain_credits(formula.unit_credits),
                "round_up": formula.round_up,
            },
        }

    def refuse_over(self, max_credits: float | None, *, account: str) -> None:
        """Raise when ``max_credits`` is set and the estimate is over it, or cannot be made."""
        if max_credits is None:
            return
        if self.credits is None:
            why = self.formula_problem or f"the models list gives model {self.model!r} no credit_formula"
            raise PixVerseInvalidInputError(
                f"max_credits={plain_credits(max_credits)} is set, and {why}: the cost cannot be estimated, "
                "nothing was sent"
            )
        if self.credits > max_credits:
            raise PixVerseInvalidInputError(
                f"this speech would cost about {self.credits} credits ({self.characters} characters in "
                f"{len(self.part_characters)} part(s), model {self.model!r}, account {account}); max_credits is "
                f"{plain_credits(max_credits)}: nothing was sent"
            )


def estimate_cost(limits: ModelLimits, parts: Iterable[str]) -> CostEstimate:
    """The cost of creating each of ``parts`` with the model of ``limits`` (each part is billed alone)."""
    lengths = tuple(len(part) for part in parts)
    formula = limits.formula
    credits = None if formula is None else plain_credits(sum(formula.credits_for(n) for n in lengths))
    return CostEstimate(limits.model, sum(lengths), lengths, credits, formula, limits.formula_problem)


def _model_limits(entry: object) -> ModelLimits | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
        return None
    name = entry["model"]
    max_characters = entry.get("max_characters")
    if not _number(max_characters) or max_characters < 1:
        documented = MODELS.get(name)
        if documented is None:
            return None
        max_characters = documented.max_characters
    formula, problem = parse_formula(entry.get("credit_formula"), model=name)
    return ModelLimits(name, int(max_characters), formula, problem)


def check_max_credits(value: object) -> float | None:
    """``max_credits`` as the operator keeps it: ``None`` (no cap), or a finite number from 0; else refused.

    A string is refused too, numeric or not: ``max_credits`` is not a templated field, so a string
    there is a mistake (``"5"`` would fail the comparison only when the task runs).
    """
    if value is None:
        return None
    if not _number(value) or value < 0:
        raise PixVerseInvalidInputError(
            f"max_credits={value!r} ({type(value).__name__}) must be a finite number from 0, or None for no cap"
        )
    return value


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def plain_credits(value: float) -> float:
    """``value`` as an int when whole (JSON and logs show 12, not 12.0), else rounded to 6 places."""
    return int(value) if float(value).is_integer() else round(value, 6)
