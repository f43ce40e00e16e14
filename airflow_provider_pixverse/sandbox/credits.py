"""Per-account credit balances: a create that costs more than what is left is refused (412)."""

from __future__ import annotations

import threading

from airflow_provider_pixverse.sandbox.voices_and_models import plain_number


class NotEnoughCredits(Exception):
    """The account has fewer credits left than the create costs."""


class CreditBook:
    """Balances by account email; an account without one has unlimited credits. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._balances: dict[str, float] = {}

    def give(self, email: str, credits: float | None) -> None:
        """Give ``email`` this many credits; None makes them unlimited again."""
        if credits is not None and credits < 0:
            raise ValueError(f"credits must not be negative, not {credits}")
        with self._lock:
            if credits is None:
                self._balances.pop(email, None)
            else:
                self._balances[email] = credits

    def left(self, email: str) -> float | None:
        """The credits ``email`` has left (None: unlimited)."""
        with self._lock:
            balance = self._balances.get(email)
        return None if balance is None else plain_number(balance)

    def accounts(self) -> set[str]:
        """The accounts given a balance."""
        with self._lock:
            return set(self._balances)

    def charge(self, email: str, cost: float) -> None:
        """Take ``cost`` from the balance, or raise :class:`NotEnoughCredits` and take nothing."""
        with self._lock:
            balance = self._balances.get(email)
            if balance is None:
                return
            if cost > balance:
                raise NotEnoughCredits(
                    f"Not enough credits: {plain_number(balance)} credits left, {plain_number(cost)} needed"
                )
            self._balances[email] = balance - cost
