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
        """The formula a models list gives, or ``None`` when it gives none that can be used."""
        if not isinstance(data, dict):
            return None
        unit_characters, unit_credits = data.get("unit_characters"), data.get("unit_credits")
        if not _number(unit_characters) or not _number(unit_credits):
            return None
        if unit_characters <= 0 or unit_credits < 0 or not float(unit_characters).is_integer():
            raise PixVerseResponseError(f"the models list gives model {model!r} an unusable credit_formula {data!r}")
        return cls(int(unit_characters), float(unit_credits), bool(data.get("round_up", True)))


@dataclass(frozen=True)
class ModelLimits:
    """One model's ``max_characters`` and ``credit_formula`` (``None`` when the models list has none)."""

    model: str
    max_characters: int
    formula: CreditFormula | None


@dataclass(frozen=True)
class ModelList:
    """The models of ``GET speech/models``, by name."""

    models: Mapping[str, ModelLimits]
    default_model: str | None = None

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
            raise PixVerseInvalidInputError(
                f"max_credits={plain_credits(max_credits)} is set, and the models list gives model {self.model!r} no "
                "credit_formula to estimate the cost with: nothing was sent"
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
    return CostEstimate(limits.model, sum(lengths), lengths, credits, formula)


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
    return ModelLimits(name, int(max_characters), CreditFormula.from_json(entry.get("credit_formula"), model=name))


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def plain_credits(value: float) -> float:
    """``value`` as an int when whole (JSON and logs show 12, not 12.0), else rounded to 6 places."""
    return int(value) if float(value).is_integer() else round(value, 6)
