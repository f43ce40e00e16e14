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
from airflow_provider_pixverse._api.split import split_text
from airflow_provider_pixverse.model_list import cached_model_list

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.cost import CostEstimate
    from airflow_provider_pixverse._api.speech_request import SpeechRequest
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

# The most a text read from object storage may hold (about 100 parts of 10,000 characters).
MAX_TEXT_BYTES = 4 * 1024 * 1024


def read_text(text: object) -> str:
    """The text to speak: ``text`` itself, or the UTF-8 text object it names when it is an ``ObjectStoragePath``."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    given = _read_object(text) if isinstance(text, ObjectStoragePath) else text
    if not isinstance(given, str) or not given.strip():
        raise PixVerseInvalidInputError(f"text must be a non-empty string, got {given!r}")
    return given


def _read_object(path: Any) -> str:
    from airflow_provider_pixverse.speech_metadata import forget_cached
    from airflow_provider_pixverse.storage import object_uri, storage_failures

    uri = object_uri(forget_cached(path))
    with storage_failures(f"reading the text from {uri}"), path.open("rb") as source:
        data = source.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise PixVerseInvalidInputError(f"the text at {uri} is over {MAX_TEXT_BYTES} bytes")
    try:
        return str(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise PixVerseInvalidInputError(
            f"the text at {uri} is not UTF-8 ({error.reason} at byte {error.start})"
        ) from None


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
