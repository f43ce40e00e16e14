"""Building requests: where they go, what they carry. Both transports send exactly these."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from airflow_provider_pixverse._api.create import build_create_form
from airflow_provider_pixverse._api.errors import PixVerseAuthError, PixVerseInvalidInputError
from airflow_provider_pixverse._api.ids import validate_audio_id
from airflow_provider_pixverse._api.response import parse_response

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_HOST = "https://api.useapi.net"
API_PATH = "/v2/pixverse"
DEFAULT_TIMEOUT = 30.0
# The API documents a default page of 50 and no maximum; a connection may ask for other sizes.
LIST_PAGE_SIZE = 50
# The page a listing asks for unless the connection says otherwise; the API's answers may cut it
# down (see ``_api.listing.PageSizer``).
LIST_PAGE_GOAL = 100
MAX_LIST_PAGE_SIZE = 1000
# Pages of one account's listing fetched at once (the connection's ``list_concurrency``), and the most
# a connection may ask for: one event loop keeps 16 connections open to the API.
LIST_CONCURRENCY = 4
MAX_LIST_CONCURRENCY = 16
# The most an API answer may hold, compressed or decoded. Every clip carries its text (``prompt``):
# the longest documented text, 40,000 characters (eleven-turbo-v2.5), of CJK escaped as JSON
# ``\uXXXX`` (6 bytes a character) makes a clip of about 241 KB (240,720 bytes as the sandbox
# answers it), and the API's default page of 50 such clips about 12.0 MB (11.5 MiB). 16 MiB holds
# that page with room to spare; a larger page (100 are asked for) is cut down by the listing itself
# (PageSizer).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# Characters a token may hold: visible ASCII (it goes into an HTTP header).
_TOKEN = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, repr=False)
class ApiSettings:
    """Where the API is and how to call it, read from a ``pixverse`` connection."""

    base_url: str
    token: str
    email: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    conn_id: str = "pixverse_default"
    max_answer_bytes: int = MAX_ANSWER_BYTES
    list_page_size: int = LIST_PAGE_GOAL
    list_concurrency: int = LIST_CONCURRENCY
    # The extra ``accounts`` as JSON text (``None``: not set); its shape is checked by the corpus
    # operator, which alone reads it (see ``operators/batch_accounts.py``).
    accounts: str | None = None

    def __repr__(self) -> str:  # the token must never show up in a repr or a log line
        return (
            f"ApiSettings(conn_id={self.conn_id!r}, base_url={self.base_url!r}, email={self.email!r}, "
            f"timeout={self.timeout!r})"
        )

    def parse(self, http_status: int, headers: Mapping[str, str], body: bytes, *, audio_id: str | None = None) -> Any:
        """Read one answer (see :func:`parse_response`), the token blanked out of any message."""
        try:
            return parse_response(http_status, headers, body, audio_id=audio_id, secret=self.token)
        except PixVerseAuthError as error:
            raise PixVerseAuthError(
                f"{error.reason}: check the API token in the password field of connection {self.conn_id!r}",
                audio_id=audio_id,
                http_status=http_status,
            ) from None

    @property
    def origin(self) -> tuple[str, str]:
        """The scheme and host:port the token may be sent to, and nowhere else."""
        parts = urlsplit(self.base_url)
        return parts.scheme, parts.netloc

    def headers(self) -> dict[str, str]:
        """The headers of every API call."""
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}


def settings_from_connection(
    conn_id: str, host: str | None, port: int | None, password: str | None, extra: dict[str, Any]
) -> ApiSettings:
    """Read the API settings from a connection's fields; refuse what cannot work."""
    password = (password or "").strip()
    if not password:
        raise PixVerseInvalidInputError(
            f"connection {conn_id!r} has no API token: put it in the connection's password field"
        )
    if not _TOKEN.fullmatch(password):
        raise PixVerseInvalidInputError(
            f"connection {conn_id!r} has an API token with spaces, control or non-ASCII characters in it; "
            "paste the token again into the connection's password field"
        )
    host = (host or DEFAULT_HOST).strip().rstrip("/")
    if "://" not in host:
        host = f"https://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PixVerseInvalidInputError(f"connection {conn_id!r} has an unusable API base URL {host!r}")
    if port and parts.port is None:
        host = f"{parts.scheme}://{parts.netloc}:{port}{parts.path}"
    path = urlsplit(host).path
    base_url = host if path.endswith(API_PATH) else f"{host}{API_PATH}"
    timeout = extra.get("timeout")
    if timeout is None or timeout == "":  # the connection form saves empty fields as null
        timeout = DEFAULT_TIMEOUT
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise PixVerseInvalidInputError(
            f"connection {conn_id!r} has timeout={timeout!r} in its extra; give a number of seconds"
        ) from None
    if timeout <= 0:
        raise PixVerseInvalidInputError(f"connection {conn_id!r} has timeout={timeout!r}; it must be positive")
    email = extra.get("email") or None
    page_size = _whole_number(
        conn_id,
        extra,
        "list_page_size",
        LIST_PAGE_GOAL,
        MAX_LIST_PAGE_SIZE,
        f"the API's default page is {LIST_PAGE_SIZE}",
    )
    concurrency = _whole_number(
        conn_id, extra, "list_concurrency", LIST_CONCURRENCY, MAX_LIST_CONCURRENCY, "pages of a listing fetched at once"
    )
    return ApiSettings(
        base_url=base_url,
        token=password,
        email=email,
        timeout=timeout,
        conn_id=conn_id,
        list_page_size=page_size,
        list_concurrency=concurrency,
        accounts=_accounts_json(conn_id, extra.get("accounts")),
    )


def _whole_number(conn_id: str, extra: dict[str, Any], name: str, default: int, most: int, about: str) -> int:
    """The whole number ``extra[name]`` (``default`` when absent or empty), from 1 to ``most``."""
    value = extra.get(name)
    if value is None or value == "":  # the connection form saves empty fields as null
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or not 1 <= number <= most:
        raise PixVerseInvalidInputError(
            f"connection {conn_id!r} has {name}={value!r} in its extra; give a whole number from 1 to {most} ({about})"
        )
    return number


def _accounts_json(conn_id: str, accounts: Any) -> str | None:
    """The extra ``accounts`` as JSON text: given as JSON (the form saves text) or as JSON already decoded."""
    if accounts is None or accounts == "":
        return None
    if isinstance(accounts, str):
        try:
            json.loads(accounts)
        except ValueError:
            raise PixVerseInvalidInputError(
                f"connection {conn_id!r} has accounts={accounts[:80]!r} in its extra, which is not JSON: give a "
                'list of emails, a mapping of email to max_jobs, or a list of {"email": ..., "max_jobs": ...}'
            ) from None
        return accounts
    return json.dumps(accounts)


@dataclass(frozen=True)
class ApiRequest:
    """One call to the API. ``path`` is appended to the base URL as it is, never re-encoded."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] | None = None
    audio_id: str | None = None

    @property
    def idempotent(self) -> bool:
        """Whether sending it twice is harmless (a create is not: it would make two jobs)."""
        return self.method == "GET"

    def url(self, settings: ApiSettings) -> str:
        """The full URL: the path as built (the audio_id unencoded), the query encoded here."""
        query = f"?{urlencode(self.params)}" if self.params else ""
        return f"{settings.base_url}{self.path}{query}"


def get_speech_request(audio_id: str) -> ApiRequest:
    """GET one clip."""
    audio_id = validate_audio_id(audio_id)
    return ApiRequest("GET", f"/speech/{audio_id}", audio_id=audio_id)


def create_speech_request(text: str, voice_id: str, **settings: Any) -> ApiRequest:
    """POST a new speech job, sent as multipart form fields."""
    return ApiRequest("POST", "/speech/create", form=build_create_form(text, voice_id, **settings))


def list_speech_request(*, email: str | None = None, limit: int = LIST_PAGE_SIZE, offset: int = 0) -> ApiRequest:
    """GET one page of the account's clips."""
    params = {"limit": str(limit), "offset": str(offset)}
    if email:
        params["email"] = email
    return ApiRequest("GET", "/speech/", params=params)


def list_voices_request(*, model: str | None = None, language: str | None = None) -> ApiRequest:
    """GET the voices, optionally for one model or language."""
    params = {key: value for key, value in (("model", model), ("language", language)) if value}
    return ApiRequest("GET", "/speech/voices", params=params)


def list_models_request(*, email: str | None = None) -> ApiRequest:
    """GET the models and their limits."""
    return ApiRequest("GET", "/speech/models", params={"email": email} if email else {})
