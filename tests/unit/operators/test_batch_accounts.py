"""The accounts of a corpus and their windows: the shapes, the checks, never over a window, busy shrinks it."""

from __future__ import annotations

import json
import random

import pytest
from pixverse_testing import use_connection

from airflow_provider_pixverse._api.request import settings_from_connection
from airflow_provider_pixverse.exceptions import PixVerseInvalidInputError
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.operators.batch_accounts import (
    DEFAULT_MAX_JOBS,
    GROW_AFTER,
    MAX_ACCOUNTS,
    Account,
    AccountWindowError,
    AccountWindows,
    connection_accounts,
    parse_accounts,
)

A, B, C = "a@example.com", "b@example.com", "c@example.com"


# -- parse_accounts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([A, B], [(A, DEFAULT_MAX_JOBS), (B, DEFAULT_MAX_JOBS)]),
        ({A: 3, B: 5}, [(A, 3), (B, 5)]),
        ([{"email": A, "max_jobs": 1}, {"email": B}], [(A, 1), (B, DEFAULT_MAX_JOBS)]),
        ([A, {"email": B, "max_jobs": 8}], [(A, DEFAULT_MAX_JOBS), (B, 8)]),
        (json.dumps({A: 2, B: 7}), [(A, 2), (B, 7)]),
        (json.dumps([A]), [(A, DEFAULT_MAX_JOBS)]),
    ],
)
def test_the_shapes(value: object, expected: list[tuple[str, int]]) -> None:
    accounts = parse_accounts(value)
    assert accounts == expected
    assert all(isinstance(account, Account) for account in accounts)


def test_the_default_is_the_connections_account_at_the_default_limit() -> None:
    assert parse_accounts(["x" * 250 + "@c.d"]) == [("x" * 250 + "@c.d", DEFAULT_MAX_JOBS)]  # 254: the most
    assert parse_accounts(None, default_email=A) == [(A, DEFAULT_MAX_JOBS)]
    assert parse_accounts(None) == [(None, DEFAULT_MAX_JOBS)]  # the token's one account
    assert parse_accounts("", default_email=None) == [(None, DEFAULT_MAX_JOBS)]
    with pytest.raises(PixVerseInvalidInputError, match="'not an email' is not a valid account email"):
        parse_accounts(None, default_email="not an email")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "names no account"),
        ({}, "names no account"),
        ({A: 0}, "max_jobs=0 of account 'a@example.com' must be a whole number from 1 to 8"),
        ({A: 9}, "max_jobs=9"),
        ({A: 2.5}, "max_jobs=2.5"),
        ({A: True}, "max_jobs=True"),
        ({A: "3"}, "max_jobs='3'"),
        ([A, "A@Example.com"], "names the account 'A@Example.com' twice"),
        (["no-at-sign"], "'no-at-sign' is not a valid account email"),
        (["a@b@c"], "'a@b@c' is not a valid account email"),
        (["a b@c.d"], "is not a valid account email"),
        (["a@c.d/x"], "is not a valid account email"),
        (["a@c.d?x=1"], "is not a valid account email"),
        (["a#@c.d"], "is not a valid account email"),
        (["a%40@c.d"], "is not a valid account email"),
        (["x" * 251 + "@c.d"], "is not a valid account email"),
        ([3], "3 is neither an email nor"),
        ([{"mail": A}], "unknown key(s) ['mail']"),
        ([{"max_jobs": 2}], "must be {'email': ..., 'max_jobs': ...}"),
        ("a@example.com", "is not JSON"),
        (3, "must be a list of emails"),
        ([f"u{n}@example.com" for n in range(MAX_ACCOUNTS + 1)], f"names {MAX_ACCOUNTS + 1} accounts; at most"),
    ],
)
def test_bad_accounts_are_refused_naming_the_value(value: object, message: str) -> None:
    with pytest.raises(PixVerseInvalidInputError) as refused:
        parse_accounts(value, where="accounts")
    assert message in str(refused.value)
    assert str(refused.value).startswith("accounts")


def test_the_connection_extra_is_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    # As the 3.2+ form saves it (text) and as JSON written by hand (decoded already).
    for extra in ({"accounts": json.dumps({A: 3, B: 5})}, {"accounts": {A: 3, B: 5}}):
        settings = settings_from_connection("pixverse_corpus", None, None, "token", {"email": C, **extra})
        assert connection_accounts(settings.accounts, email=settings.email, conn_id="pixverse_corpus") == [
            (A, 3),
            (B, 5),
        ]
    unset = settings_from_connection("pixverse_corpus", None, None, "token", {"email": C, "accounts": ""})
    assert unset.accounts is None
    assert connection_accounts(unset.accounts, email=unset.email, conn_id="pixverse_corpus") == [(C, 3)]


def test_the_connection_extra_through_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, "pixverse_two", password="token", extra={"accounts": [A, {"email": B, "max_jobs": 5}]})
    settings = PixVerseHook("pixverse_two").settings
    assert connection_accounts(settings.accounts, email=settings.email, conn_id="pixverse_two") == [(A, 3), (B, 5)]


def test_a_bad_connection_extra_names_the_connection() -> None:
    with pytest.raises(PixVerseInvalidInputError, match=r"connection 'pixverse_bad' has accounts='a@b.c, d@e.f'"):
        settings_from_connection("pixverse_bad", None, None, "token", {"accounts": "a@b.c, d@e.f"})
    settings = settings_from_connection("pixverse_bad", None, None, "token", {"accounts": '{"a@b.c": 12}'})
    with pytest.raises(PixVerseInvalidInputError, match=r"the extra 'accounts' of connection 'pixverse_bad'.*12"):
        connection_accounts(settings.accounts, email=None, conn_id="pixverse_bad")


# -- AccountWindows ------------------------------------------------------------------------------------------


def fill(windows: AccountWindows) -> list[str | None]:
    """Start creates until every window is full; the accounts they went to."""
    chosen = []
    while (account := windows.next_account()) is not None:
        windows.started(account.email)
        chosen.append(account.email)
    return chosen


def test_work_is_spread_in_proportion_to_free_slots() -> None:
    windows = AccountWindows([(A, 3), (B, 5)])
    chosen = fill(windows)
    assert (chosen.count(A), chosen.count(B)) == (3, 5)
    assert chosen[:3] == [B, B, A] or chosen[:2] == [B, B]  # the freest first
    assert windows.next_account() is None
    windows.ended(A)
    account = windows.next_account()
    assert account == (A, 3)


def test_the_one_account_of_the_token_is_an_account() -> None:
    windows = AccountWindows(parse_accounts(None))
    assert fill(windows) == [None, None, None]


def test_busy_shrinks_the_window_and_accepted_creates_grow_it_back() -> None:
    windows = AccountWindows([(A, 4)], grow_after=2)
    fill(windows)
    windows.busy(A)  # another client took a slot: no job, the window shrinks
    assert (windows.in_flight[A], windows.windows[A]) == (3, 3)
    assert windows.next_account() is None
    for _ in range(3):
        windows.ended(A)
    for _ in range(5):
        windows.started(A)
        windows.busy(A)
    assert windows.windows[A] == 1  # never below 1
    assert windows.in_flight[A] == 0
    windows.started(A)
    windows.created(A)
    assert windows.windows[A] == 1
    windows.ended(A)
    windows.started(A)
    windows.created(A)
    assert windows.windows[A] == 2  # grown back by one after grow_after accepted creates
    for _ in range(20):
        windows.ended(A)
        windows.started(A)
        windows.created(A)
    assert windows.windows[A] == 4  # never above the limit


def test_the_default_growth() -> None:
    windows = AccountWindows([(A, 2)])
    windows.started(A)
    windows.busy(A)
    for _ in range(GROW_AFTER - 1):
        windows.started(A)
        windows.created(A)
        windows.ended(A)
    assert windows.windows[A] == 1
    windows.started(A)
    windows.created(A)
    assert windows.windows[A] == 2


def test_counts_that_cannot_be_are_refused() -> None:
    windows = AccountWindows([(A, 1)])
    with pytest.raises(AccountWindowError, match="nothing in flight"):
        windows.ended(A)
    with pytest.raises(AccountWindowError, match="nothing in flight"):
        windows.busy(A)
    windows.started(A)
    with pytest.raises(AccountWindowError, match=r"'a@example.com' has no free slot: 1 in flight, window 1"):
        windows.started(A)
    with pytest.raises(AccountWindowError, match="not one of this task's accounts"):
        windows.started(B)
    with pytest.raises(PixVerseInvalidInputError, match="given twice"):
        AccountWindows([(A, 1), (A, 2)])
    with pytest.raises(PixVerseInvalidInputError, match="at least one account"):
        AccountWindows([])


def test_the_windows_survive_as_json() -> None:
    windows = AccountWindows([(A, 3), (B, 5)])
    windows.started(B)
    windows.busy(B)
    restored = AccountWindows.from_json(json.loads(json.dumps(windows.to_json())))
    assert restored is not None
    assert (restored.limits, restored.windows, restored.in_flight) == ({A: 3, B: 5}, {A: 3, B: 4}, {A: 0, B: 0})
    for bad in (
        None,
        {},
        {"accounts": []},
        {"accounts": [[A, 3, 4]]},
        {"accounts": [[A, 9, 1]]},
        {"accounts": [[3, 3, 3]]},
    ):
        assert AccountWindows.from_json(bad) is None


@pytest.mark.parametrize("seed", range(20))
def test_never_more_in_flight_than_the_window_whatever_happens(seed: int) -> None:
    """A random run of creates accepted, refused busy, failing and ending: the invariant holds at every step."""
    rng = random.Random(seed)
    accounts = [(f"u{n}@example.com", rng.randint(1, 8)) for n in range(rng.randint(1, 4))]
    windows = AccountWindows(accounts, grow_after=rng.randint(1, 5))
    jobs: list[str | None] = []  # accepted jobs running
    seen_busy = False
    for _ in range(2000):
        if rng.random() < 0.6 and (account := windows.next_account()) is not None:
            assert windows.free(account.email) == max(windows.free(email) for email in windows.accounts)
            windows.started(account.email)
            outcome = rng.random()
            if outcome < 0.2:
                windows.busy(account.email)
                seen_busy = True
            elif outcome < 0.25:
                windows.ended(account.email)  # the create failed otherwise
            else:
                windows.created(account.email)
                jobs.append(account.email)
        elif jobs:
            windows.ended(jobs.pop(rng.randrange(len(jobs))))
        for email, limit in accounts:
            assert 0 <= windows.in_flight[email] <= windows.windows[email] <= limit
            assert windows.windows[email] >= 1
        assert windows.total_in_flight() == len(jobs)
        assert (windows.next_account() is None) == all(windows.free(email) == 0 for email in windows.accounts)
    assert seen_busy
