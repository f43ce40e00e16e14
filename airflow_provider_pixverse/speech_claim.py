"""A run's claim on a destination, made before anything is paid, so that two runs of one speech pay once.

The claim is a small JSON object beside the destination, ``.<name>.pixverse-claim``: the content
key, who claimed it (host, process, task) and when, when it expires, and the job (its parts and
their clips, as they are created). How each store makes it:

- **local files**: written under a temporary name and linked to the claim's name (``os.link``
  fails when the name exists: an exclusive create, never seen half-written); its owner updates it
  with ``os.replace``; a stale claim is taken over under a takeover lock (an exclusive create
  beside it, itself stale after :data:`TAKEOVER_LOCK_SECONDS`);
- **S3** (s3fs): ``PutObject`` with ``If-None-Match: *`` to create it, and ``If-Match: <ETag>`` of
  the claim that was read to update or take it over (moto supports both since 5.0.x);
- **other stores** (GCS, Azure, ...): best effort: the claim is written when none is seen, which
  two runs may both do at the same moment.

A claim is stale, and may be taken over, once its ``expires_at`` passed (the claimer's wait
timeout plus :data:`CLAIM_MARGIN_SECONDS` after it was made or last updated) or when its owner
ran on this host and its process is gone. A claim that cannot be read is stale.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.media import MAX_NAME_BYTES, fit_name
from airflow_provider_pixverse.storage import object_uri, storage_failures

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

CLAIM_SUFFIX = ".pixverse-claim"
CLAIM_VERSION = 1
# Time a claim's owner has, past its wait timeout, to download and publish the speech.
CLAIM_MARGIN_SECONDS = 600.0
TAKEOVER_LOCK_SECONDS = 60.0
_MAX_CLAIM_BYTES = 256 * 1024
_LOCAL = ("", "file", "local")
_S3 = ("s3", "s3a")


@dataclass(frozen=True)
class Claim:
    """One run's claim on a destination (see the module); ``tag`` is the store's version of it when read."""

    content_key: str
    nonce: str
    owner: dict[str, Any]
    claimed_at: float
    expires_at: float
    job: dict[str, Any] | None = None
    tag: str | None = field(default=None, compare=False)

    @classmethod
    def new(cls, content_key: str, *, ttl: float, task: str | None, job: dict[str, Any] | None) -> Claim:
        """A claim of this process, ``ttl`` seconds long."""
        now = time.time()
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "task": task}
        return cls(content_key, uuid.uuid4().hex, owner, now, now + ttl, job)

    def renewed(self, *, ttl: float, job: dict[str, Any] | None) -> Claim:
        """The same claim, with ``job`` and its expiry ``ttl`` seconds from now."""
        return replace(self, job=job, expires_at=time.time() + ttl)

    def stale(self, now: float | None = None) -> bool:
        """Expired, or its owner ran on this host and its process is gone."""
        if (time.time() if now is None else now) >= self.expires_at:
            return True
        host, pid = self.owner.get("host"), self.owner.get("pid")
        return host == socket.gethostname() and isinstance(pid, int) and not _process_alive(pid)

    def describe(self) -> str:
        """Who claimed it and when, in words."""
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.claimed_at))
        task = self.owner.get("task") or "a task"
        return f"{task} (host {self.owner.get('host')}, process {self.owner.get('pid')}) since {since}"

    def to_json(self) -> dict[str, Any]:
        """The claim as stored."""
        data = asdict(self)
        data.pop("tag")
        return {"version": CLAIM_VERSION, **data}

    @classmethod
    def from_json(cls, data: object, tag: str | None) -> Claim:
        """The claim stored as ``data``; one that is not a claim of this release is stale at once."""
        try:
            if not isinstance(data, dict) or data.get("version") != CLAIM_VERSION:
                raise ValueError("not a claim")
            owner, job = data["owner"], data.get("job")
            if not isinstance(owner, dict) or not (job is None or isinstance(job, dict)):
                raise ValueError("not a claim")
            return cls(
                content_key=str(data["content_key"]),
                nonce=str(data["nonce"]),
                owner={k: owner.get(k) for k in ("host", "pid", "task")},
                claimed_at=float(data["claimed_at"]),
                expires_at=float(data["expires_at"]),
                job=job,
                tag=tag,
            )
        except (KeyError, TypeError, ValueError):
            return cls("", "", {}, 0.0, 0.0, None, tag)


def claim_path(target: ObjectStoragePath) -> ObjectStoragePath:
    """Where the claim on ``target`` is kept: ``.<name>.pixverse-claim`` beside it."""
    name = fit_name(target.name, MAX_NAME_BYTES - len(CLAIM_SUFFIX) - 1 - len(".lock"))
    return target.parent / f".{name}{CLAIM_SUFFIX}"


def read_claim(target: ObjectStoragePath) -> Claim | None:
    """The claim on ``target``, or ``None`` when there is none."""
    path = claim_path(target)
    uri = object_uri(path)
    with storage_failures(f"reading {uri}"):
        if _is_local(path):
            try:
                with open(path.path, "rb") as stored:
                    data = stored.read(_MAX_CLAIM_BYTES + 1)
            except FileNotFoundError:
                return None
            tag = None
        else:
            path.fs.invalidate_cache(path.path)
            try:
                info = path.fs.info(path.path)  # the version first: a claim changed since is refused by If-Match
                data = path.fs.cat_file(path.path, start=0, end=_MAX_CLAIM_BYTES + 1)
            except FileNotFoundError:
                return None
            tag = info.get("ETag")
    try:
        document = json.loads(data) if len(data) <= _MAX_CLAIM_BYTES else None
    except ValueError:
        document = None
    return Claim.from_json(document, tag)


def create_claim(target: ObjectStoragePath, claim: Claim) -> bool:
    """Write ``claim`` if there is no claim on ``target`` (exclusively where the store allows); whether it was."""
    path = claim_path(target)
    data = json.dumps(claim.to_json(), sort_keys=True).encode()
    with storage_failures(f"writing {object_uri(path)}"):
        if _is_local(path):
            os.makedirs(os.path.dirname(path.path), exist_ok=True)
            temporary = _local_temporary(path, data)
            try:
                os.link(temporary, path.path)
            except FileExistsError:
                return False
            finally:
                os.unlink(temporary)
            return True
        if _is_s3(path):
            try:
                path.fs.pipe_file(path.path, data, mode="create")
            except OSError:
                if read_claim(target) is not None:
                    return False  # another run's claim got there first (412 Precondition Failed)
                raise
            return True
        if path.exists():
            return False
        path.write_bytes(data)
        return True


def replace_claim(target: ObjectStoragePath, old: Claim, new: Claim) -> bool:
    """Put ``new`` in place of ``old`` if the claim on ``target`` is still ``old``; whether it was."""
    path = claim_path(target)
    data = json.dumps(new.to_json(), sort_keys=True).encode()
    with storage_failures(f"writing {object_uri(path)}"):
        if _is_local(path):
            return _replace_local(target, path, old, data)
        if _is_s3(path):
            if old.tag is None:
                return False
            try:
                path.fs.pipe_file(path.path, data, IfMatch=old.tag)
            except (OSError, FileNotFoundError):
                return False  # changed or removed since it was read
            return True
        current = read_claim(target)
        if current is None or current.nonce != old.nonce:
            return False
        path.write_bytes(data)
        return True


def update_claim(target: ObjectStoragePath, mine: Claim) -> Claim | None:
    """Store ``mine`` (its job, its expiry) if the claim on ``target`` is still this run's; the claim as stored now."""
    current = read_claim(target)
    if current is None or current.nonce != mine.nonce:
        return None
    path = claim_path(target)
    if _is_local(path):
        data = json.dumps(mine.to_json(), sort_keys=True).encode()
        with storage_failures(f"writing {object_uri(path)}"):
            os.replace(_local_temporary(path, data), path.path)
        return mine
    if not replace_claim(target, current, mine):
        return None
    return read_claim(target)


def remove_claim(target: ObjectStoragePath, *, content_key: str, nonce: str | None = None) -> bool:
    """Remove the claim on ``target`` if it is of ``content_key`` (and, given ``nonce``, this run's); whether it was."""
    current = read_claim(target)
    if current is None or current.content_key != content_key or (nonce is not None and current.nonce != nonce):
        return False
    path = claim_path(target)
    with storage_failures(f"removing {object_uri(path)}"):
        if _is_local(path):
            try:
                os.unlink(path.path)
            except FileNotFoundError:
                return False
        else:
            path.fs.rm_file(path.path)
            path.fs.invalidate_cache(path.path)
    return True


def _replace_local(target: ObjectStoragePath, path: ObjectStoragePath, old: Claim, data: bytes) -> bool:
    lock = f"{path.path}.lock"
    if not _take_lock(lock):
        return False
    try:
        current = read_claim(target)
        if current is None or current.nonce != old.nonce:
            return False
        os.replace(_local_temporary(path, data), path.path)
        return True
    finally:
        os.unlink(lock)


def _take_lock(lock: str) -> bool:
    for _ in range(2):
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return True
        except FileExistsError:
            try:
                if time.time() - os.stat(lock).st_mtime < TAKEOVER_LOCK_SECONDS:
                    return False
                os.unlink(lock)  # left by a run killed while taking over
            except FileNotFoundError:
                pass
    return False


def _local_temporary(path: ObjectStoragePath, data: bytes) -> str:
    temporary = f"{os.path.dirname(path.path)}/.{uuid.uuid4().hex}.claim-part"
    with open(temporary, "wb") as out:
        out.write(data)
    return temporary


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def _protocol(path: ObjectStoragePath) -> str:
    return path.protocol if isinstance(path.protocol, str) else path.protocol[0]


def _is_local(path: ObjectStoragePath) -> bool:
    return _protocol(path) in _LOCAL


def _is_s3(path: ObjectStoragePath) -> bool:
    return _protocol(path) in _S3 and callable(getattr(path.fs, "pipe_file", None))
