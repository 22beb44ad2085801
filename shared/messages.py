"""The one envelope every broker message travels in, and the single decoder for all of them."""

from __future__ import annotations

import uuid
import zlib
from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from shared.commands import CommandPayload
from shared.events import EventPayload

# Events carry a partition slot as the last word of their routing key: task.<task_id>.<type>.<slot>.
# The slot depends on the task id only (so one task's events share one collector partition, in order)
# and on this constant only (so producers need not know DP_COLLECTOR_PARTITIONS: the topology binds
# slots to partition queues). It bounds the number of partitions.
PARTITION_SLOTS = 64


def partition_slot(task_id: str) -> int:
    return zlib.crc32(task_id.encode()) % PARTITION_SLOTS


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Envelope(BaseModel):
    """What both envelopes share: `type` repeats the payload's tag (producers may leave it out)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = ""
    producer: str

    # An after-validator only: a `mode="before"` one makes pydantic build the whole message as Python
    # objects before validating it (3x the cost of decoding an event from JSON).
    @model_validator(mode="after")
    def _type_matches(self) -> Self:
        tag = self.payload.type  # type: ignore[attr-defined]
        if not self.type:
            object.__setattr__(self, "type", tag)  # frozen: the tag is filled in once, here
        elif self.type != tag:
            raise ValueError(f"envelope type {self.type!r} does not match payload type {tag!r}")
        return self


class EventEnvelope(_Envelope):
    kind: Literal["event"] = "event"
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    task_id: str
    occurred_at: datetime = Field(default_factory=utcnow)
    payload: EventPayload

    @property
    def routing_key(self) -> str:
        return f"task.{self.task_id}.{self.type}.{partition_slot(self.task_id)}"


class CommandEnvelope(_Envelope):
    kind: Literal["command"] = "command"
    command_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    task_id: str | None
    issued_at: datetime = Field(default_factory=utcnow)
    payload: CommandPayload


Message = Annotated[EventEnvelope | CommandEnvelope, Field(discriminator="kind")]

MESSAGE_ADAPTER: TypeAdapter[EventEnvelope | CommandEnvelope] = TypeAdapter(Message)
EVENT_ADAPTER: TypeAdapter[EventEnvelope] = TypeAdapter(EventEnvelope)


def decode_message(body: bytes) -> EventEnvelope | CommandEnvelope:
    """Parse any broker message; raises pydantic.ValidationError for anything not in the catalog."""
    return MESSAGE_ADAPTER.validate_json(body)


def encode(message: EventEnvelope | CommandEnvelope) -> bytes:
    return message.model_dump_json().encode()
