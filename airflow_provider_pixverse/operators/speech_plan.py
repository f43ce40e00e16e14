"""The plan of one text's speech, made before anything is paid: its text, its parts and their cost.

:func:`read_text` takes the text from object storage when it is a path; :func:`plan_job` splits the
request into parts the model accepts (see :mod:`airflow_provider_pixverse._api.split`) and estimates
their cost from the models list (see :mod:`airflow_provider_pixverse.model_list`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.cost import estimate_cost
from airflow_provider_pixverse._api.create import MODELS
from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError, PixVerseResponseError
from airflow_provider_pixverse._api.speech_job import PartState, SpeechJob
from airflow_provider_pixverse._api.speech_request import request_text
from airflow_provider_pixverse._api.split import split_text
from airflow_provider_pixverse.model_list import cached_model_list

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.cost import CostEstimate
    from airflow_provider_pixverse._api.speech_request import SpeechRequest
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

# The cap of every text, given as a string or read from object storage: its size in bytes of UTF-8,
# as given (before normalisation). 4 MiB is about 400 parts of 10,000 characters.
MAX_TEXT_BYTES = 4 * 1024 * 1024


def read_text(text: object) -> str:
    """The text to speak: ``text`` itself, or the UTF-8 text object it names when it is an ``ObjectStoragePath``.

    Either way it is refused when over :data:`MAX_TEXT_BYTES` bytes of UTF-8, empty, or not
    encodable as UTF-8 (a lone surrogate).
    """
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    if isinstance(text, ObjectStoragePath):
        return _non_empty(_read_object(text))
    if not isinstance(text, str):
        raise PixVerseInvalidInputError(f"text must be a string or an ObjectStoragePath, got {_shown(text)}")
    check_text_size(text)
    return _non_empty(text)


def check_text_size(text: str, *, where: str = "the text") -> None:
    """Refuse ``text`` when it is over :data:`MAX_TEXT_BYTES` bytes of UTF-8, or holds a lone surrogate."""
    if len(text) > MAX_TEXT_BYTES:  # every character is at least one byte: no need to encode it all
        raise PixVerseInvalidInputError(
            f"{where} is {len(text):,} characters, so at least {len(text):,} bytes of UTF-8: over the cap of "
            f"{MAX_TEXT_BYTES:,} bytes (MAX_TEXT_BYTES); split it into several texts"
        )
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise PixVerseInvalidInputError(
            f"{where} holds a lone surrogate (U+{ord(text[error.start]):04X}) at character {error.start}: "
            "it cannot be sent as UTF-8"
        ) from None
    if size > MAX_TEXT_BYTES:
        raise PixVerseInvalidInputError(
            f"{where} is {size:,} bytes of UTF-8: over the cap of {MAX_TEXT_BYTES:,} bytes (MAX_TEXT_BYTES); "
            "split it into several texts"
        )


def _non_empty(text: str) -> str:
    if not request_text(text):  # what would be sent: a byte order mark alone is empty
        raise PixVerseInvalidInputError(f"text must be a non-empty string, got {_shown(text)}")
    return text


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:80] + "..."


def _read_object(path: Any) -> str:
    from airflow_provider_pixverse.speech_metadata import forget_cached
    from airflow_provider_pixverse.storage import object_uri, storage_failures

    uri = object_uri(forget_cached(path))
    with storage_failures(f"reading the text from {uri}"), path.open("rb") as source:
        data = source.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise PixVerseInvalidInputError(
            f"the text at {uri} is {_stored_size(path)} bytes: over the cap of {MAX_TEXT_BYTES:,} bytes "
            "(MAX_TEXT_BYTES); split it into several texts"
        )
    try:
        return str(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise PixVerseInvalidInputError(
            f"the text at {uri} is not UTF-8 ({error.reason} at byte {error.start})"
        ) from None


def _stored_size(path: Any) -> str:
    """The size of the object at ``path`` for a message: exact when the store says it, else a bound."""
    try:
        return f"{int(path.stat().st_size):,}"
    except Exception:  # the size is only for the message: the cap was already passed
        return f"more than {MAX_TEXT_BYTES:,}"


def plan_job(hook: PixVerseHook, request: SpeechRequest, *, email: str | None) -> tuple[SpeechJob, CostEstimate]:
    """The parts of ``request`` (none created yet) and what they are expected to cost."""
    limits = cached_model_list(hook, email=email).limits(request.model)
    documented = MODELS.get(request.model)
    max_characters = min(limits.max_characters, documented.max_characters) if documented else limits.max_characters
    spans = split_text(request.text, max_characters)
    estimate = estimate_cost(limits, [request.text[start:end] for start, end in spans])
    parts = [PartState(index, start, end) for index, (start, end) in enumerate(spans, 1)]
    return SpeechJob(request.key, max_characters, estimate.to_json(), parts=parts), estimate


def replan_job(hook: PixVerseHook, request: SpeechRequest, *, email: str | None, audio_ids: list[str]) -> SpeechJob:
    """The job planned again after a deferral that lost its state: ``audio_ids`` (the event's clips) are its parts."""
    job, _ = plan_job(hook, request, email=email)
    if len(audio_ids) != len(job.parts):
        raise PixVerseResponseError(
            f"the task resumed without the state of its {len(job.parts)} part(s), and the trigger's event names "
            f"{len(audio_ids)} clip(s): run it again (the parts already made are found at the destination "
            "only once written)"
        )
    for part, audio_id in zip(job.parts, audio_ids, strict=True):
        part.audio_id = audio_id
    return job


def describe_estimate(job: SpeechJob, account: str) -> str:
    """The log line of a job's estimate."""
    estimate = job.estimate
    formula = estimate.get("credit_formula")
    rule = (
        f"{formula['unit_credits']} per {'started ' if formula['round_up'] else ''}"
        f"{formula['unit_characters']} characters"
        if formula
        else "no usable credit_formula in the models list"
    )
    return (
        f"Estimated cost: {estimate['credits']} credits for {estimate['characters']} characters in "
        f"{estimate['parts']} part(s) of at most {job.max_characters}, model {estimate['model']} ({rule}), "
        f"account {account}"
    )
