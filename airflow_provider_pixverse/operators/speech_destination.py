"""Where one text's speech lands: its objects, what they already hold, the check before paying, the metadata.

A :class:`SpeechDestination` is the destination of one request: one object (``split="join"``) or
one numbered object per part (``split="parts"``). It tells whether the objects already hold the
request's speech (found by its content key, bytes intact: see
:mod:`airflow_provider_pixverse.speech_metadata`), refuses before anything is paid to replace an
object of other content, joins parts into one MP3, and builds the metadata stored with each object.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.cost import plain_credits
from airflow_provider_pixverse._api.intent import text_digest
from airflow_provider_pixverse.exceptions import DestinationExistsError
from airflow_provider_pixverse.speech_metadata import (
    finish_staged,
    forget_cached,
    same_key_as,
    stage_metadata,
    stored_speech,
    write_metadata,
)
from airflow_provider_pixverse.speech_record import max_parts_of
from airflow_provider_pixverse.storage import object_uri, resolve_destination, step, storage_failures, write_stream

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from airflow_provider_pixverse._api.speech_job import PartState, SpeechJob
    from airflow_provider_pixverse._api.speech_request import SpeechRequest
    from airflow_provider_pixverse.storage import WrittenObject
    from airflow_provider_pixverse.storage_upload import PendingUpload

SPLIT_MODES = ("join", "parts")
_READ_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class SpeechDestination:
    """The object(s) a request's speech is written to.

    :param destination: A file, or a folder (ends with ``/`` or has no suffix) that gets
        ``pixverse-<first 16 hex of the content key>.mp3``.
    :param split: ``"join"`` for one object, ``"parts"`` for one numbered object per part.
    :param conn_id: The object store's connection, if any.
    :param overwrite: Replace an object that holds other content.
    :param log: Where to say what was found (the task's log).
    """

    destination: str | ObjectStoragePath
    split: str
    conn_id: str | None
    overwrite: bool
    log: Any  # the task's logger (its type differs between Airflow versions)

    def base(self, request: SpeechRequest) -> ObjectStoragePath:
        """The destination's object before parts are numbered (the one object with ``split="join"``)."""
        named = SpeechClip(name=f"pixverse-{request.key[:16]}.mp3")
        return resolve_destination(self.destination, named, conn_id=self.conn_id or None)

    def targets(self, request: SpeechRequest, parts: int) -> list[ObjectStoragePath]:
        """The objects written: the one object, or with ``split="parts"`` one numbered object per part."""
        base = self.base(request)
        if self.split == "join":
            return [base]
        return [base.parent / f"{base.stem}-{index:03d}{base.suffix or '.mp3'}" for index in range(1, parts + 1)]

    def stored(self, request: SpeechRequest) -> list[dict[str, Any]] | None:
        """The checked metadata of every object when they hold this request's speech, intact; else ``None`` (logged).

        The number of parts comes from the first object's record, bounded by the text (see
        :func:`~airflow_provider_pixverse.speech_record.max_parts_of`); each record names where its
        object was found, not where it was written.
        """
        limit = max_parts_of(request.text)
        numbered = self.split == "parts"
        (first_target,) = self.targets(request, 1)
        first, why = stored_speech(first_target, request.key, max_parts=limit, part=1 if numbered else None)
        if first is None:
            self.log.info("Creating the speech: %s", why)
            return None
        found = [first]
        for index, target in enumerate(self.targets(request, first["parts"])[1:], 2):
            metadata, why = stored_speech(target, request.key, max_parts=first["parts"], part=index)
            if metadata is None or metadata["parts"] != first["parts"]:
                self.log.info("Creating the speech: %s", why if metadata is None else f"{why}, of another count")
                return None
            found.append(metadata)
        return found

    def check_before_paying(self, request: SpeechRequest, parts: int) -> bool:
        """Refuse, before paying, to replace another object; True when a damaged object of this request is there.

        An object is this request's (damaged) only when its stored record passes the checks; any
        other object, or one whose record does not, is other content.
        """
        replace = False
        numbered = self.split == "parts"
        for index, target in enumerate(self.targets(request, parts), 1):
            forget_cached(target)
            with storage_failures(f"checking {object_uri(target)}"):
                exists = target.exists()
            if not exists:
                continue
            if same_key_as(target, request.key, max_parts=max_parts_of(request.text), part=index if numbered else None):
                self.log.warning("%s holds this speech, damaged: it will be replaced", object_uri(target))
                replace = True
            elif not self.overwrite:
                raise DestinationExistsError(
                    f"{object_uri(target)} already exists with other content; pass overwrite=True to replace it "
                    "(nothing was sent, no credits spent)"
                )
        return replace


class MetadataStage:
    """The metadata of one object, staged while the object is written so that both are published at once.

    Given to the write as its ``before_publish`` (see :func:`~airflow_provider_pixverse.storage.write_stream`):
    the metadata is built from what is about to be published and staged with it (see
    :func:`~airflow_provider_pixverse.speech_metadata.stage_metadata`). When the write kept an
    identical object instead, :meth:`finish` stores the metadata with it then.

    :param build: What is stored with the object, from what was written and the audio's duration.
    :param duration: The duration stored (set by :func:`join_parts` once the parts are joined).
    """

    def __init__(
        self, build: Callable[[WrittenObject, float | None], dict[str, Any]], duration: float | None = None
    ) -> None:
        self.build = build
        self.duration = duration
        self.metadata: dict[str, Any] | None = None
        self.where: str | None = None

    def __call__(self, temporary: ObjectStoragePath | PendingUpload, written: WrittenObject) -> None:
        self.metadata = self.build(written, self.duration)
        self.where = stage_metadata(temporary, written.path, self.metadata)

    def finish(self, written: WrittenObject) -> tuple[dict[str, Any], str]:
        """The metadata stored with the written object, and where it is kept."""
        if written.written and self.metadata is not None and self.where is not None:
            finish_staged(written.path, self.where)
            return self.metadata, self.where
        metadata = self.build(written, self.duration)
        where = write_metadata(written.path, metadata)
        step("metadata")
        return metadata, where


def join_parts(
    fetch: Callable[[SpeechClip, ObjectStoragePath], WrittenObject],
    clips: list[SpeechClip],
    target: ObjectStoragePath,
    *,
    overwrite: bool,
    log: Any,
    stage: MetadataStage | None = None,
) -> tuple[WrittenObject, float]:
    """Download the parts (``fetch``) into a local folder, join them frame by frame, write the one MP3 to ``target``."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from airflow_provider_pixverse.mp3join import join_mp3

    with tempfile.TemporaryDirectory(prefix="pixverse-join-") as folder:
        paths = []
        for index, clip in enumerate(clips, 1):
            path = Path(folder) / f"part-{index:03d}.mp3"
            fetch(clip, ObjectStoragePath(path.as_uri()))
            paths.append(path)
        joined_path = Path(folder) / "joined.mp3"
        joined = join_mp3(paths, joined_path)
        log.info(
            "Joined %d parts into one MP3: %d bytes, %.3f s (%.3f s of it the encoder's padding at the joins)",
            len(paths),
            joined.size,
            joined.duration,
            joined.join_gap_seconds,
        )
        if stage is not None:
            stage.duration = joined.duration
        with joined_path.open("rb") as source:
            written = write_stream(
                iter(lambda: source.read(_READ_BLOCK), b""),
                target,
                origin=f"the MP3 joined from {len(paths)} parts",
                file_size=joined.size,
                overwrite=overwrite,
                before_publish=stage,
            )
    return written, joined.duration


def speech_metadata(
    request: SpeechRequest,
    job: SpeechJob,
    parts: list[PartState],
    clips: list[SpeechClip],
    written: WrittenObject,
    duration: float | None,
    *,
    part_number: int | None = None,
) -> dict[str, Any]:
    """What is stored with an object, pushed to XCom and given to the asset event."""
    credits = [clip.credits for clip in clips]
    part_credits = job.estimate.get("part_credits")
    estimated = (
        job.estimate.get("credits")
        if len(parts) == len(job.parts) or not part_credits
        else sum(part_credits[part.index - 1] for part in parts)
    )
    metadata: dict[str, Any] = {
        "content_key": request.key,
        "audio_ids": [clip.audio_id for clip in clips],
        "text_sha256": text_digest(request.text),
        "text_length": len(request.text),
        "voice_id": request.voice_id,
        "model": request.model,
        "settings": request.settings,
        "credits_estimated": estimated,
        "credits_charged": None if None in credits else plain_credits(sum(c or 0 for c in credits)),
        "duration": None if duration is None else round(duration, 3),
        "bytes": written.size,
        "sha256": written.sha256,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "destination": object_uri(written.path),
        "parts": len(job.parts),
        "reused": False,
    }
    if part_number is not None:
        metadata["part"] = part_number
    return metadata
