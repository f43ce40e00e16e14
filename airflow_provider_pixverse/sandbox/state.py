"""The sandbox's clips, their clock and the accounts' credits. No I/O: the server asks, this answers."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse.sandbox import mp3
from airflow_provider_pixverse.sandbox.clips import COMPLETED, FAILED, Clip, speech_seconds, status_code
from airflow_provider_pixverse.sandbox.credits import CreditBook
from airflow_provider_pixverse.sandbox.jobs import DEFAULT_MAX_JOBS, JobLimits
from airflow_provider_pixverse.sandbox.validation import DEFAULT_EMAIL, CreateRequest, ValidationError
from airflow_provider_pixverse.sandbox.voices_and_models import MODELS

if TYPE_CHECKING:
    from collections.abc import Callable

FIRST_NUMBER = 100_000
FIRST_ASSET_ID = 11_223_344


class ClipNotFound(KeyError):
    """No clip with this id (never made, or deleted)."""


class SandboxState:
    """Every clip, the clock settings, the pending job failures and the credits. Thread-safe."""

    def __init__(
        self,
        queued_seconds: float = 0.2,
        generating_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_jobs: int | None = DEFAULT_MAX_JOBS,
    ) -> None:
        self.queued_seconds = queued_seconds
        self.generating_seconds = generating_seconds
        self.media_base = "http://127.0.0.1"
        self.credits = CreditBook()
        self.jobs = JobLimits(max_jobs)
        self._clock = clock
        self._wall = wall_clock
        self._lock = self.lock = threading.RLock()
        self._clips: dict[str, Clip] = {}
        self._by_asset: dict[int, Clip] = {}
        self._next_number = FIRST_NUMBER
        self._next_asset = FIRST_ASSET_ID
        self._fail_next: list[tuple[str | None, str | None]] = []
        # The listing's order: newest first as documented (unconfirmed); tests set "oldest" to check clients.
        self.listing_order = "newest"

    def set_clock(self, queued_seconds: float | None = None, generating_seconds: float | None = None) -> None:
        """Change how long clips created from now on stay QUEUED and GENERATING."""
        with self._lock:
            if queued_seconds is not None:
                self.queued_seconds = float(queued_seconds)
            if generating_seconds is not None:
                self.generating_seconds = float(generating_seconds)

    def fail_next_jobs(self, n: int = 1, fail_code: str | None = None, fail_reason: str | None = None) -> None:
        """Make the next ``n`` created clips end FAILED instead of COMPLETED."""
        with self._lock:
            self._fail_next.extend([(fail_code, fail_reason)] * n)

    def create(
        self,
        request: CreateRequest,
        *,
        duration: float | None = None,
        size_bytes: int | None = None,
        status: str | int | None = None,
        ready_after: float | None = None,
        fail_code: str | None = None,
        fail_reason: str | None = None,
        charge: bool = False,
        as_job: bool = False,
    ) -> Clip:
        """Record a new clip; without ``status`` or ``ready_after`` it follows the clock.

        Its audio lasts ``duration`` seconds, or is ``size_bytes`` long, or else follows the text.
        With ``charge``, the account pays the clip's credits first (:class:`NotEnoughCredits` if it cannot).
        With ``as_job`` (a create sent to the API), the account's job limit applies first
        (:class:`~airflow_provider_pixverse.sandbox.jobs.AccountBusy` when reached: nothing made or charged).
        """
        email = request.email or DEFAULT_EMAIL
        cost = MODELS[request.model].credits_for(request.text)
        if size_bytes is not None:
            layout = mp3.layout_for_size(size_bytes)
        else:
            layout = mp3.layout_for_duration(speech_seconds(request.text) if duration is None else duration)
        with self._lock:
            if as_job:
                self.jobs.admit(email, self._clock(), request.settings.get("maxJobs"))
            if charge:
                self.credits.charge(email, cost)
            queued, generating = self.queued_seconds, self.generating_seconds
            if ready_after is not None:
                queued = min(queued, ready_after)
                generating = ready_after - queued
            end_status = COMPLETED if status is None else status_code(status)
            if status is None and self._fail_next:
                end_status = FAILED
                fail_code, fail_reason = self._fail_next.pop(0)
            clip = Clip(
                number=self._next_number,
                asset_id=self._next_asset,
                email=email,
                text=request.text,
                voice_id=request.voice_id,
                model=request.model,
                language_code=request.language_code,
                created_wall=self._wall(),
                created_mono=self._clock(),
                queued_seconds=queued,
                generating_seconds=generating,
                credits=cost,
                end_status=end_status,
                fixed=status is not None and ready_after is None,
                fail_code=fail_code,
                fail_reason=fail_reason,
                layout=layout,
                settings=dict(request.settings),
            )
            self._next_number += 1
            self._next_asset += 1
            self._clips[clip.audio_id] = clip
            self._by_asset[clip.asset_id] = clip
            if as_job:
                self.jobs.started(clip, clip.created_mono)
            return clip

    def get(self, audio_id: str) -> Clip:
        """The clip, or :class:`ClipNotFound`."""
        with self._lock:
            clip = self._clips.get(audio_id)
            if clip is None:
                raise ClipNotFound(audio_id)
            return clip

    def poll(self, audio_id: str) -> dict[str, Any]:
        """The JSON a GET answers; counts down a pending delete-after-polls."""
        with self._lock:
            clip = self.get(audio_id)
            if clip.polls_left is not None:
                if clip.polls_left <= 0:
                    self.delete(audio_id)
                    raise ClipNotFound(audio_id)
                clip.polls_left -= 1
            return self.clip_json(clip)

    def clip_json(self, clip: Clip) -> dict[str, Any]:
        """The clip's JSON now."""
        return clip.to_json(self._clock(), self.media_base)

    def finish(self, audio_id: str) -> None:
        """End a clip now, with the status it was going to end with."""
        with self._lock:
            clip = self.get(audio_id)
            clip.queued_seconds = clip.generating_seconds = 0.0

    def delete(self, audio_id: str) -> None:
        """Forget a clip (its GET answers 404 from now on)."""
        with self._lock:
            clip = self._clips.pop(audio_id, None)
            if clip is None:
                raise ClipNotFound(audio_id)
            self._by_asset.pop(clip.asset_id, None)

    def delete_after_polls(self, audio_id: str, polls: int) -> None:
        """Let ``polls`` more GETs of the clip answer, then make it disappear."""
        with self._lock:
            self.get(audio_id).polls_left = int(polls)

    def media(self, asset_id: int) -> Clip | None:
        """The completed clip behind a media file, if any."""
        with self._lock:
            clip = self._by_asset.get(asset_id)
        if clip is None or clip.status_at(self._clock())[0] != COMPLETED:
            return None
        return clip

    def accounts(self) -> set[str]:
        """The accounts the sandbox knows: those with clips or with a credit balance."""
        with self._lock:
            return {c.email for c in self._clips.values()} | self.credits.accounts()

    def only_account(self) -> str:
        """The account a request that names none is for; refused (400) while the sandbox knows several."""
        with self._lock:
            known = self.accounts()
            if len(known) > 1:
                raise ValidationError(
                    f"Parameter email is required when more than one account is configured ({len(known)} are)"
                )
            return next(iter(known), DEFAULT_EMAIL)

    def listing(self, email: str | None, limit: int, offset: int) -> dict[str, Any]:
        """The GET speech/ answer: one account's clips, in flight or ended, newest first, one page.

        ``email`` may be left out while the sandbox knows one account at most.
        """
        with self._lock:
            email = email or self.only_account()
            newest_first = self.listing_order != "oldest"
            clips = sorted((c for c in self._clips.values() if c.email == email), key=lambda c: -c.number)
            clips = clips if newest_first else clips[::-1]
            data = [self.clip_json(c) for c in clips[offset : offset + limit]]
        return {"data": data, "next_offset": offset + limit, "has_more": offset + limit < len(clips)}
