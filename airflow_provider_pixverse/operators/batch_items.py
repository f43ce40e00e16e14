"""The items of a corpus: each text with its name, its settings and its request, all checked before anything is sent.

The contract the corpus operator relies on:

- :func:`read_items` takes ``texts`` in one of three shapes:

  - a mapping ``name -> text``;
  - a list (or any sequence, an XCom list included) of ``{"name": ..., "text": ...}`` dicts; a
    dict may also carry its own ``voice_id``, ``model`` and audio settings (:data:`ITEM_SETTINGS`:
    ``language_code``, ``speed``, ``volume``, ``pitch``, ``emotion``, ``stability``,
    ``similarity_boost``, ``style``, ``use_speaker_boost``). A key the item leaves out takes the
    operator's value (``defaults``); a key it sets to ``None`` is not sent for that item (so an
    item of another model family can drop a setting of the defaults). Any other key is refused;
  - an ``ObjectStoragePath``, or a URI string, of a folder: its ``*.txt`` objects (direct children,
    not sub-folders; hidden ones, whose name starts with ``.``, skipped) are the items, named after
    the object's stem, read as :func:`~airflow_provider_pixverse.operators.speech_plan.read_text`
    reads a text (UTF-8, at most ``MAX_TEXT_BYTES`` each). The folder is listed once, at most
    :data:`MAX_FOLDER_ENTRIES` entries, and its items are sorted by name.

- The checks, all before anything is sent, in this order: the corpus size (at most
  :data:`MAX_ITEMS` items, checked before any item is looked at); then every item's name (see
  :func:`name_problem`: unique ignoring case, since some object stores and file systems ignore it;
  safe as an object name), its text (not empty, within the text cap; at most
  :data:`MAX_CORPUS_BYTES` of text in all) and its settings (checked against its model as the
  one-task operator checks them). Every bad item is reported at once, in one
  :class:`~airflow_provider_pixverse.exceptions.PixVerseInvalidInputError` that names each (by
  name, and by index for a list) and says why, the first :data:`MAX_REPORTED` of them listed.

- A :class:`BatchItem` holds its name, its voice, model and merged settings, and its
  :class:`~airflow_provider_pixverse._api.speech_request.SpeechRequest`, built as
  ``PixVerseBaseCreatingOperator.speech_request`` builds it: its content key is the one the
  one-task operator stores, so the two operators recognise each other's objects.
  :func:`group_duplicates` groups the items whose requests are the same (same content key): one
  create serves them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.content import AUDIO_SETTINGS
from airflow_provider_pixverse._api.create import CREATE_SETTINGS, build_create_form
from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError
from airflow_provider_pixverse._api.speech_request import SpeechRequest
from airflow_provider_pixverse.operators.speech_plan import MAX_TEXT_BYTES, read_text

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

__all__ = [
    "ITEM_SETTINGS",
    "MAX_CORPUS_BYTES",
    "MAX_ITEMS",
    "MAX_NAME_LENGTH",
    "BatchItem",
    "group_duplicates",
    "name_problem",
    "read_items",
]

# The most items one corpus may hold. 100,000 texts is a large catalogue; each item costs the task
# a few hundred bytes besides its text, and the manifest one line.
MAX_ITEMS = 100_000
# The most text one corpus may hold in all (the items are in memory together): characters of the
# texts given inline, bytes of the objects of a folder. 256 MiB is 100,000 texts of 2.6 KB.
MAX_CORPUS_BYTES = 256 * 1024 * 1024
# The most characters (and bytes of UTF-8) of a name: ``<name>.mp3``, its metadata sidecar
# ``<name>.mp3.json`` and their temporary names (48 bytes more) stay within the 255 bytes a file
# system allows a name.
MAX_NAME_LENGTH = 200
# The most entries of a folder of texts that are looked at (texts, their MP3s and sidecars if the
# corpus is spoken into its own folder, and some more).
MAX_FOLDER_ENTRIES = 5 * MAX_ITEMS
# The most bad items one error lists (the others are counted).
MAX_REPORTED = 20
TEXT_SUFFIX = ".txt"
# The settings an item may carry besides its name and text.
ITEM_SETTINGS = AUDIO_SETTINGS
_ITEM_KEYS = frozenset(("name", "text", "voice_id", "model", *ITEM_SETTINGS))
# What the operator may give as defaults: the voice, the model, every create setting but the account.
_DEFAULT_KEYS = frozenset(("voice_id", *(key for key in CREATE_SETTINGS if key != "email")))
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f/\\#?%]")


@dataclass(frozen=True)
class BatchItem:
    """One item of a corpus: its name, how it is spoken, and its request (its content key).

    :param name: The item's name: it lands at ``<destination>/<name>.mp3``.
    :param voice_id: The voice, the item's own or the operator's.
    :param model: The model as given (``None``: the API's default), the item's own or the operator's.
    :param settings: The create settings (no ``None`` among them): the operator's, with the item's over them.
    :param request: The normalised request: what is sent and keyed.
    :param index: Where the item is in the corpus as given (for messages).
    """

    name: str
    voice_id: str
    model: str | None
    settings: dict[str, Any]
    request: SpeechRequest
    index: int

    @property
    def text(self) -> str:
        """The text as it is sent and keyed (normalised)."""
        return self.request.text

    @property
    def key(self) -> str:
        """The content key of the item's request."""
        return self.request.key

    def create_arguments(self) -> dict[str, Any]:
        """The keyword arguments of the hook's ``create_speech`` but the text and the account (``email``)."""
        return {"voice_id": self.voice_id, "model": self.model, **self.settings}


def read_items(texts: object, *, defaults: Mapping[str, Any], conn_id: str | None = None) -> list[BatchItem]:
    """The items of ``texts`` (see the module), every one checked; one error naming every bad item otherwise.

    :param texts: A mapping name -> text, a sequence of item dicts, or a folder of ``*.txt`` objects
        (an ``ObjectStoragePath`` or a URI string).
    :param defaults: The operator's ``voice_id``, ``model`` and create settings (``None``: not set);
        the items' own values go over them.
    :param conn_id: The object store's connection, for a folder given as a URI string.
    """
    unknown = sorted(set(defaults) - _DEFAULT_KEYS)
    if unknown:
        raise PixVerseInvalidInputError(
            f"unknown default setting(s) {unknown}; known: {', '.join(sorted(_DEFAULT_KEYS))}"
        )
    given = {key: value for key, value in defaults.items() if value is not None}
    problems = _Problems()
    if isinstance(texts, str) or _is_storage_path(texts):
        items = _folder_items(_folder_of(texts, conn_id), given, problems)
    elif isinstance(texts, Mapping):
        _check_count(len(texts))
        entries = (({"name": name, "text": text}, None) for name, text in texts.items())
        items = _inline_items(entries, given, problems)
    elif isinstance(texts, Sequence) and not isinstance(texts, (bytes, bytearray)):
        _check_count(len(texts))
        items = _inline_items(((entry, index) for index, entry in enumerate(texts)), given, problems)
    else:
        raise PixVerseInvalidInputError(
            "texts must be a mapping of name to text, a list of {'name': ..., 'text': ...} dicts, or the "
            f"ObjectStoragePath or URI of a folder of *.txt objects; got {type(texts).__name__}"
        )
    problems.raise_if_any()
    return items


def group_duplicates(items: Sequence[BatchItem]) -> dict[str, list[BatchItem]]:
    """The items by content key, in the order each key first appears: one create serves every item of a group."""
    groups: dict[str, list[BatchItem]] = {}
    for item in items:
        groups.setdefault(item.key, []).append(item)
    return groups


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name an item (``None`` when it can).

    A name is a non-empty string of at most :data:`MAX_NAME_LENGTH` characters and bytes of UTF-8,
    with no ``/``, ``\\``, ``..``, ``#``, ``?``, ``%`` or control character in it, and not starting
    with ``.`` (a hidden object). ``#``, ``?`` and ``%`` would change what a URI built from it points at.
    """
    if not isinstance(name, str):
        return f"a name must be a string, not {type(name).__name__}"
    if not name:
        return "the name is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"the name is {len(name)} characters; at most {MAX_NAME_LENGTH}"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "the name holds a lone surrogate: it is not UTF-8"
    if size > MAX_NAME_LENGTH:
        return f"the name is {size} bytes of UTF-8; at most {MAX_NAME_LENGTH}"
    unsafe = _UNSAFE_CHARACTERS.search(name)
    if unsafe is not None:
        return f"the name holds {unsafe.group()!r}, which is not safe in an object name"
    if ".." in name:
        return "the name holds '..'"
    if name.startswith("."):
        return "the name starts with '.' (a hidden object)"
    return None


# -- the three shapes ---------------------------------------------------------------------------------


def _inline_items(entries: Any, defaults: dict[str, Any], problems: _Problems) -> list[BatchItem]:
    items: list[BatchItem] = []
    names = _Names(problems)
    total = 0
    for position, (entry, index) in enumerate(entries):
        label = f"item {index}" if index is not None else f"item {position}"
        if not isinstance(entry, Mapping):
            problems.add(label, f"must be a {{'name': ..., 'text': ...}} dict, not {type(entry).__name__}")
            continue
        name = entry.get("name")
        label = _label(name, index)
        if not names.take(name, label):
            continue
        unknown = sorted(str(key) for key in set(entry) - _ITEM_KEYS)
        if unknown:
            problems.add(label, f"unknown key(s) {unknown}; an item takes {', '.join(sorted(_ITEM_KEYS))}")
            continue
        text = entry.get("text")
        if not isinstance(text, str):
            problems.add(label, f"its text must be a string, not {type(text).__name__}")
            continue
        total += len(text)  # at least one byte each: the exact size is checked with the text
        if total > MAX_CORPUS_BYTES:
            raise PixVerseInvalidInputError(_over_corpus_bytes(label))
        item = _item(str(name), text, entry, defaults, index if index is not None else position, label, problems)
        if item is not None:
            items.append(item)
    return items


def _folder_items(folder: ObjectStoragePath, defaults: dict[str, Any], problems: _Problems) -> list[BatchItem]:
    from airflow_provider_pixverse.speech_metadata import forget_cached
    from airflow_provider_pixverse.storage import object_uri, storage_failures

    uri = object_uri(folder)
    forget_cached(folder)
    with storage_failures(f"listing the texts in {uri}"):
        if not folder.is_dir():
            raise PixVerseInvalidInputError(f"texts: {uri} is not a folder (or, in an object store, holds nothing)")
        entries = folder.fs.ls(folder.path, detail=True)
    if len(entries) > MAX_FOLDER_ENTRIES:
        raise PixVerseInvalidInputError(
            f"the folder {uri} holds {len(entries):,} entries; at most {MAX_FOLDER_ENTRIES:,} are looked at "
            "(MAX_FOLDER_ENTRIES): give a folder that holds the texts alone"
        )
    found: list[tuple[str, str, int | None]] = []
    for entry in entries:
        base = str(entry.get("name", "")).rstrip("/").rsplit("/", 1)[-1]
        if entry.get("type") == "file" and base.endswith(TEXT_SUFFIX) and not base.startswith("."):
            size = entry.get("size")
            found.append((base[: -len(TEXT_SUFFIX)], base, size if isinstance(size, int) else None))
    _check_count(len(found))
    found.sort()
    names = _Names(problems)
    total = 0
    items: list[BatchItem] = []
    for index, (name, base, size) in enumerate(found):
        label = _label(name, None)
        if not names.take(name, label):
            continue
        if size is not None and size > MAX_TEXT_BYTES:
            problems.add(label, f"{base} is {size:,} bytes: over the text cap of {MAX_TEXT_BYTES:,} (MAX_TEXT_BYTES)")
            continue
        total += size or 0
        if total > MAX_CORPUS_BYTES:
            raise PixVerseInvalidInputError(_over_corpus_bytes(label))
        if names.bad:  # a bad name seen: report the names without reading every text
            continue
        try:
            text = read_text(folder / base)
        except PixVerseInvalidInputError as error:
            problems.add(label, error.reason)
            continue
        item = _item(name, text, {}, defaults, index, label, problems, text_checked=True)
        if item is not None:
            items.append(item)
    return items


def _item(
    name: str,
    text: str,
    entry: Mapping[str, Any],
    defaults: dict[str, Any],
    index: int,
    label: str,
    problems: _Problems,
    *,
    text_checked: bool = False,
) -> BatchItem | None:
    merged = dict(defaults)
    for key in ("voice_id", "model", *ITEM_SETTINGS):
        if key in entry:
            merged[key] = entry[key]  # None: not sent for this item
    merged = {key: value for key, value in merged.items() if value is not None}
    voice_id = merged.pop("voice_id", None)
    model = merged.pop("model", None)
    try:
        if not text_checked:
            read_text(text)  # the text cap, a lone surrogate, an empty text: as the one-task operator refuses them
        if voice_id is None:
            raise PixVerseInvalidInputError("no voice_id: neither the item nor the operator gives one")
        build_create_form(".", voice_id, model=model, **merged)
        request = SpeechRequest.of(text, voice_id, model, **merged)
    except PixVerseInvalidInputError as error:
        problems.add(label, error.reason)
        return None
    return BatchItem(name=name, voice_id=voice_id, model=model, settings=merged, request=request, index=index)


# -- checks and their report ----------------------------------------------------------------------------


class _Problems:
    """Every bad item, reported at once: the first :data:`MAX_REPORTED` listed, the others counted."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.count = 0

    def add(self, label: str, why: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_REPORTED:
            self.listed.append(f"{label}: {why}")

    def raise_if_any(self) -> None:
        if not self.count:
            return
        more = self.count - len(self.listed)
        tail = f"; and {more} more bad item(s)" if more else ""
        raise PixVerseInvalidInputError(
            f"{self.count} bad item(s) in texts, nothing sent: " + "; ".join(self.listed) + tail
        )


class _Names:
    """The names seen so far, ignoring case: a name refused, or seen before, is a problem."""

    def __init__(self, problems: _Problems) -> None:
        self.problems = problems
        self.seen: dict[str, str] = {}
        self.bad = 0

    def take(self, name: object, label: str) -> bool:
        why = name_problem(name)
        if why is not None:
            self.bad += 1
            self.problems.add(label, why)
            return False
        folded = str(name).casefold()
        first = self.seen.get(folded)
        if first is not None:
            self.bad += 1
            self.problems.add(label, f"the same name as {first} (names are compared ignoring case)")
            return False
        self.seen[folded] = label
        return True


def _label(name: object, index: int | None) -> str:
    shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:80] + "..."
    return f"item {shown}" if index is None else f"item {index} ({shown})"


def _check_count(count: int) -> None:
    if count > MAX_ITEMS:
        raise PixVerseInvalidInputError(
            f"texts holds {count:,} items; a corpus holds at most {MAX_ITEMS:,} (MAX_ITEMS): "
            "split it over several tasks"
        )


def _over_corpus_bytes(label: str) -> str:
    return (
        f"texts holds more than {MAX_CORPUS_BYTES:,} bytes of text in all (MAX_CORPUS_BYTES), passed at {label}: "
        "split the corpus over several tasks"
    )


def _is_storage_path(value: object) -> bool:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    return isinstance(value, ObjectStoragePath)


def _folder_of(texts: Any, conn_id: str | None) -> ObjectStoragePath:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    if isinstance(texts, ObjectStoragePath):
        return texts
    if not texts.strip():
        raise PixVerseInvalidInputError("texts is an empty string: give a folder's URI, a mapping or a list")
    return ObjectStoragePath(texts, conn_id=conn_id or None)
