"""The accounts a corpus is spread over, and how many creates each may have in flight: pure, no I/O.

The contract the corpus operator relies on:

- :func:`parse_accounts` reads the accounts, each an :class:`Account` ``(email, max_jobs)``, from the
  operator's ``accounts`` argument, else from the connection's extra ``accounts`` (the same shapes,
  as JSON: see :func:`connection_accounts`), else the default: the connection's ``email`` (``None``
  when it names none: the token's one account) at :data:`DEFAULT_MAX_JOBS`. The shapes: a list of
  emails (each at :data:`DEFAULT_MAX_JOBS`), a mapping ``email -> max_jobs``, or a list of
  ``{"email": ..., "max_jobs": ...}`` dicts (``max_jobs`` optional); a JSON string of any of them.
  Limits are whole numbers from 1 to 8 (the API's ``maxJobs`` range); emails are checked as the
  API's sandbox checks them (one ``@``, no spaces, ``/``, ``?``, ``#``, ``%`` or ``\\``, at most
  254 characters); an account named twice (ignoring case) is refused, as is an empty list or more
  than :data:`MAX_ACCOUNTS`. Every error names the value.

- :class:`AccountWindows` counts what this task has in flight on each account and keeps it within
  each account's *window*: its limit, shrunk by one (never below 1) each time a create is refused
  busy (429: another client uses the account's slots), grown back by one after
  :data:`GROW_AFTER` creates accepted since. The protocol, for each create::

      account = windows.next_account() # None: every window is full; wait for a job to end
      email = account.email
      windows.started(email)           # before the create is sent: it counts in flight from now
      ...                              # accepted: windows.created(email); the job runs
      ...                              # 429 busy: windows.busy(email); no job, the slot is given back
      ...                              # any other failure of the create: windows.ended(email)
      windows.ended(email)             # when the job ends (final), or is given up

  Invariant: never more in flight on an account than its window, and so than its limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from airflow_provider_pixverse._api.errors import PixVerseError, PixVerseInvalidInputError

__all__ = [
    "DEFAULT_MAX_JOBS",
    "GROW_AFTER",
    "MAX_ACCOUNTS",
    "Account",
    "AccountWindows",
    "connection_accounts",
    "parse_accounts",
]

# The job limit of an account whose limit is not given. The API does not say an account's maxJobs;
# 3 is a mid-range PixVerse plan's concurrency and the sandbox's default. Too high costs a 429 now and
# then, which shrinks the window; too low only leaves a slot idle.
DEFAULT_MAX_JOBS = 3
MIN_JOBS, MAX_JOBS = 1, 8  # the API's maxJobs range
MAX_ACCOUNTS = 64
# Creates accepted on an account since its window last changed, before a shrunk window grows by one.
# Ten keeps an account that another client keeps busy from being refused every other create, and lets
# a window shrunk by a short burst of the other client's jobs come back within a few rounds.
GROW_AFTER = 10
MAX_EMAIL_LENGTH = 254
# As the sandbox checks an email (sandbox/validation.py): one "@", nothing that would change a URL.
_EMAIL = re.compile(r"[^@\s/?#%\\]+@[^@\s/?#%\\]+")


class Account(NamedTuple):
    """One account: its email (``None``: the token's one account) and how many jobs it runs at once."""

    email: str | None
    max_jobs: int


def parse_accounts(value: object, *, default_email: str | None = None, where: str = "accounts") -> list[Account]:
    """The accounts ``value`` names (see the module); ``None``: ``default_email`` at :data:`DEFAULT_MAX_JOBS`.

    :param value: The operator's argument or the connection's extra (a JSON string is decoded).
    :param default_email: The connection's ``email``, used when ``value`` is ``None``.
    :param where: What ``value`` is, for messages.
    """
    if value is None or value == "":
        return [Account(_email(default_email, where) if default_email else None, DEFAULT_MAX_JOBS)]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise PixVerseInvalidInputError(
                f"{where}={_shown(value)} is not JSON: give a list of emails, a mapping of email to max_jobs, "
                'or a list of {"email": ..., "max_jobs": ...}'
            ) from None
    if isinstance(value, Mapping):
        pairs = [(email, limit) for email, limit in value.items()]
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        pairs = [_pair(entry, where) for entry in value]
    else:
        raise PixVerseInvalidInputError(
            f"{where}={_shown(value)} must be a list of emails, a mapping of email to max_jobs, "
            'or a list of {"email": ..., "max_jobs": ...}'
        )
    if not pairs:
        raise PixVerseInvalidInputError(f"{where} names no account: give at least one, or leave it unset")
    if len(pairs) > MAX_ACCOUNTS:
        raise PixVerseInvalidInputError(f"{where} names {len(pairs)} accounts; at most {MAX_ACCOUNTS}")
    accounts: list[Account] = []
    seen: set[str] = set()
    for email, limit in pairs:
        checked = _email(email, where)
        if checked.casefold() in seen:
            raise PixVerseInvalidInputError(f"{where} names the account {checked!r} twice (emails ignore case)")
        seen.add(checked.casefold())
        accounts.append(Account(checked, _limit(limit, checked, where)))
    return accounts


def connection_accounts(accounts_extra: str | None, *, email: str | None, conn_id: str) -> list[Account]:
    """The accounts of a connection: its extra ``accounts`` (JSON) when set, else its ``email``."""
    return parse_accounts(accounts_extra, default_email=email, where=f"the extra 'accounts' of connection {conn_id!r}")


def _pair(entry: object, where: str) -> tuple[object, object]:
    if isinstance(entry, str):
        return entry, DEFAULT_MAX_JOBS
    if isinstance(entry, Mapping):
        unknown = sorted(str(key) for key in set(entry) - {"email", "max_jobs"})
        if unknown or "email" not in entry:
            raise PixVerseInvalidInputError(
                f"{where}: the account {_shown(dict(entry))} must be {{'email': ..., 'max_jobs': ...}} "
                f"(max_jobs optional){f'; unknown key(s) {unknown}' if unknown else ''}"
            )
        limit = entry.get("max_jobs")
        return entry["email"], DEFAULT_MAX_JOBS if limit is None else limit
    raise PixVerseInvalidInputError(
        f"{where}: {_shown(entry)} is neither an email nor an {{'email': ..., 'max_jobs': ...}} dict"
    )


def _email(email: object, where: str) -> str:
    if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
        raise PixVerseInvalidInputError(f"{where}: {_shown(email)} is not a valid account email")
    return email


def _limit(limit: object, email: str, where: str) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not MIN_JOBS <= limit <= MAX_JOBS:
        raise PixVerseInvalidInputError(
            f"{where}: max_jobs={_shown(limit)} of account {email!r} must be a whole number from {MIN_JOBS} to "
            f"{MAX_JOBS} (the API's maxJobs range)"
        )
    return limit


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:80] + "..."


class AccountWindowError(PixVerseError, RuntimeError):
    """The windows were told something their counts cannot allow (a slot taken that is not free, an unknown account)."""


class AccountWindows:
    """What this task has in flight on each account, kept within each account's window (see the module).

    :param accounts: The accounts and their limits (from :func:`parse_accounts`).
    :param grow_after: Creates accepted on a shrunk account before its window grows back by one.
    """

    def __init__(self, accounts: Sequence[tuple[str | None, int]], *, grow_after: int = GROW_AFTER) -> None:
        if not accounts:
            raise PixVerseInvalidInputError("AccountWindows needs at least one account")
        if isinstance(grow_after, bool) or not isinstance(grow_after, int) or grow_after < 1:
            raise PixVerseInvalidInputError(f"grow_after={grow_after!r} must be a whole number from 1")
        self.grow_after = grow_after
        self._order: list[str | None] = []
        self.limits: dict[str | None, int] = {}
        for email, limit in accounts:
            if email in self.limits:
                raise PixVerseInvalidInputError(f"AccountWindows: the account {email!r} is given twice")
            self._order.append(email)
            self.limits[email] = limit
        self.windows = dict(self.limits)
        self.in_flight = dict.fromkeys(self._order, 0)
        self._accepted = dict.fromkeys(self._order, 0)  # creates accepted since the window last changed

    def __repr__(self) -> str:
        shown = ", ".join(f"{email}: {self.in_flight[email]}/{self.windows[email]}" for email in self._order)
        return f"AccountWindows({shown})"

    @property
    def accounts(self) -> list[str | None]:
        """The accounts, in the order given."""
        return list(self._order)

    def free(self, email: str | None) -> int:
        """The slots of ``email``'s window not in use."""
        self._known(email)
        return self.windows[email] - self.in_flight[email]

    def total_in_flight(self) -> int:
        """What this task has in flight on every account together."""
        return sum(self.in_flight.values())

    def next_account(self) -> Account | None:
        """The account the next create goes to: the one with the most free slots (the first given on a tie).

        Taking the freest each time fills the accounts in proportion to their free slots. ``None``
        when every window is full. The slot is taken by :meth:`started`, not here.
        """
        best: Account | None = None
        most = 0
        for email in self._order:
            free = self.windows[email] - self.in_flight[email]
            if free > most:
                best, most = Account(email, self.limits[email]), free
        return best

    def started(self, email: str | None) -> None:
        """A create is about to be sent to ``email``: it counts in flight from now."""
        if self.free(email) <= 0:
            raise AccountWindowError(
                f"account {email!r} has no free slot: {self.in_flight[email]} in flight, window {self.windows[email]}"
            )
        self.in_flight[email] += 1

    def created(self, email: str | None) -> None:
        """The create started on ``email`` was accepted: its job runs (and counts toward growing the window)."""
        self._in_use(email)
        self._accepted[email] += 1
        if self.windows[email] < self.limits[email] and self._accepted[email] >= self.grow_after:
            self.windows[email] += 1
            self._accepted[email] = 0

    def ended(self, email: str | None) -> None:
        """A job of ``email`` ended (or a create started on it failed, or was given up): its slot is free."""
        self._in_use(email)
        self.in_flight[email] -= 1

    def adopted(self, email: str | None) -> None:
        """A job found running on ``email`` (made before these windows counted it): in flight, even over the window."""
        self._known(email)
        self.in_flight[email] += 1

    def busy(self, email: str | None) -> None:
        """The create started on ``email`` was refused busy (no job made): its slot given back, the window shrunk."""
        self._in_use(email)
        self.in_flight[email] -= 1
        self.windows[email] = max(1, self.windows[email] - 1)
        self._accepted[email] = 0

    def to_json(self) -> dict[str, Any]:
        """The windows as JSON (for the task state store): each account's limit and window, and the creates
        accepted since the window last changed (so a shrunk window grows back across the task's resumes)."""
        return {
            "accounts": [[email, self.limits[email], self.windows[email]] for email in self._order],
            "accepted": [self._accepted[email] for email in self._order],
        }

    @classmethod
    def from_json(cls, data: object, *, grow_after: int = GROW_AFTER) -> AccountWindows | None:
        """Windows saved by :meth:`to_json`, nothing in flight; ``None`` when ``data`` is not such a record."""
        entries = data.get("accounts") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not entries:
            return None
        accounts: list[tuple[str | None, int]] = []
        windows: list[int] = []
        for entry in entries:
            valid = isinstance(entry, list) and len(entry) == 3 and (entry[0] is None or isinstance(entry[0], str))
            numbers = valid and all(
                isinstance(n, int) and not isinstance(n, bool) and MIN_JOBS <= n <= MAX_JOBS for n in entry[1:]
            )
            if not numbers or entry[2] > entry[1]:
                return None
            accounts.append((entry[0], entry[1]))
            windows.append(entry[2])
        try:
            restored = cls(accounts, grow_after=grow_after)
        except PixVerseInvalidInputError:
            return None
        restored.windows = dict(zip(restored.accounts, windows, strict=True))
        accepted = data.get("accepted") if isinstance(data, dict) else None
        if isinstance(accepted, list) and len(accepted) == len(windows):
            for email, count in zip(restored.accounts, accepted, strict=True):
                if isinstance(count, int) and not isinstance(count, bool) and 0 <= count < restored.grow_after:
                    restored._accepted[email] = count
        return restored

    def _known(self, email: str | None) -> None:
        if email not in self.limits:
            raise AccountWindowError(f"account {email!r} is not one of this task's accounts")

    def _in_use(self, email: str | None) -> None:
        self._known(email)
        if self.in_flight[email] <= 0:
            raise AccountWindowError(f"account {email!r} has nothing in flight to end")
