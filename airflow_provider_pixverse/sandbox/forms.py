"""Reading the fields of a create request: multipart, JSON or URL-encoded."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from airflow_provider_pixverse.sandbox.validation import ValidationError


def _multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """Fields of a multipart/form-data body (files are read as text)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValidationError("Malformed multipart/form-data body")
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        charset = part.get_content_charset() or "utf-8"
        fields[str(name)] = payload.decode(charset, "replace")
    return fields


def parse_fields(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The form fields of a request body, by its content type."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        return _multipart(body, content_type or "")
    if media_type == "application/json" or (not media_type and body.lstrip().startswith(b"{")):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise ValidationError("Malformed JSON body") from None
        if not isinstance(data, dict):
            raise ValidationError("JSON body must be an object")
        return data
    if media_type in ("application/x-www-form-urlencoded", ""):
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise ValidationError("Malformed form body") from None
    raise ValidationError(f"Unsupported Content-Type {media_type}")
