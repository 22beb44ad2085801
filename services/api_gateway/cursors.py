"""Opaque keyset cursors: base64url JSON tagged with the list they page through."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from services.api_gateway.errors import InvalidParams
from services.api_gateway.schemas.requests import BIGINT_MAX


def encode_cursor(kind: str, **position: Any) -> str:
    raw = json.dumps({"k": kind, **position}, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or data.get("k") != kind:
        raise InvalidParams(
            "invalid cursor: pass next_cursor from the previous page unchanged", invalid=["cursor"]
        )
    return data


def task_cursor(created_at: datetime, task_id: str) -> str:
    return encode_cursor("tasks", t=created_at.isoformat(), i=task_id)


def decode_task_cursor(token: str) -> tuple[datetime, str]:
    data = decode_cursor("tasks", token)
    try:
        created_at = datetime.fromisoformat(str(data["t"]))
        task_id = str(data["i"])
    except (KeyError, ValueError):
        raise InvalidParams("invalid cursor", invalid=["cursor"]) from None
    if created_at.tzinfo is None or "\x00" in task_id:
        raise InvalidParams("invalid cursor", invalid=["cursor"])
    return created_at, task_id


def id_cursor(kind: str, value: int, **extra: Any) -> str:
    return encode_cursor(kind, v=value, **extra)


def decode_id_cursor(kind: str, token: str) -> dict[str, Any]:
    data = decode_cursor(kind, token)
    value = data.get("v")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= BIGINT_MAX:
        raise InvalidParams("invalid cursor", invalid=["cursor"])
    return data
