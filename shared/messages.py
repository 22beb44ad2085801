"""The one envelope every broker message travels in, and the single decoder for all of them."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from shared.commands import CommandPayload, RunStep
from shared.events import EventPayload, StepScheduled

# Events carry a partition slot as the last word of their routing key: task.<task_id>.<type>.<slot>.
# The slot depends on the task id only (so one task's events share one collector partition, in order)
# and on this constant only (so producers need not know DP_COLLECTOR_PARTITIONS: the topology binds
# slots to partition queues). It bounds the number of partitions.
PARTITION_SLOTS = 64
MAX_BATCH_EVENTS = 100  # events in one broker message (shared/event_batches.py)


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


class EventBatch(BaseModel):
    """Consecutive events of one task in one broker message: each is stored and applied as its own event,
    in order; the message costs each queue it reaches one delivery instead of one per event. Routed by
    its last event (shared/event_batches.py says which events may travel ahead of which).

    A step order: when the last event is a `step_scheduled`, the batch may carry the `run_step` command
    that carries it out. The message then also reaches the steps queue (shared.broker sends it with the
    CC header `steps`): the step runner reads the command, the collector and the streams read the events,
    so a runner never holds a command whose event the broker lacks. `events` may then hold that one event.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["events"] = "events"
    events: tuple[EventEnvelope, ...] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)
    command: CommandEnvelope | None = None

    @model_validator(mode="after")
    def _one_task_and_its_order(self) -> Self:
        if len({e.task_id for e in self.events}) != 1:
            raise ValueError("a batch carries the events of one task")
        if self.command is None:
            if len(self.events) < 2:
                raise ValueError("a batch without a command carries at least two events")
            return self
        scheduled, run = self.events[-1].payload, self.command.payload
        if not (
            isinstance(scheduled, StepScheduled)
            and isinstance(run, RunStep)
            and self.command.task_id == self.events[-1].task_id
            and (run.step, run.execution_id, run.attempt, run.force)
            == (scheduled.step, scheduled.execution_id, scheduled.attempt, scheduled.force)
        ):
            raise ValueError("a batch's command is the run_step of the step_scheduled that ends it")
        return self

    @property
    def type(self) -> str:
        return self.events[-1].type

    @property
    def task_id(self) -> str:
        return self.events[-1].task_id

    @property
    def routing_key(self) -> str:
        return self.events[-1].routing_key

    @property
    def event_id(self) -> uuid.UUID:
        """The last event's id: the message's AMQP message id, as an event sent alone has its own."""
        return self.events[-1].event_id


Message = Annotated[EventEnvelope | CommandEnvelope | EventBatch, Field(discriminator="kind")]
Envelope = EventEnvelope | CommandEnvelope

MESSAGE_ADAPTER: TypeAdapter[EventEnvelope | CommandEnvelope | EventBatch] = TypeAdapter(Message)
EVENT_ADAPTER: TypeAdapter[EventEnvelope] = TypeAdapter(EventEnvelope)
EVENTS_ADAPTER: TypeAdapter[EventEnvelope | EventBatch] = TypeAdapter(
    Annotated[EventEnvelope | EventBatch, Field(discriminator="kind")]
)


def decode_message(body: bytes) -> EventEnvelope | CommandEnvelope | EventBatch:
    """Parse any broker message; raises pydantic.ValidationError for anything not in the catalog."""
    return MESSAGE_ADAPTER.validate_json(body)


def unpack(message: EventEnvelope | CommandEnvelope | EventBatch) -> Sequence[Envelope]:
    """The envelopes a message carries, in order: a batch's events, or the message itself."""
    return message.events if isinstance(message, EventBatch) else (message,)


def step_commands(message: EventEnvelope | CommandEnvelope | EventBatch) -> Sequence[Envelope]:
    """What the steps queue's consumer handles: a step order's command, or the message's envelopes (a
    `run_step` sent alone, as before step orders; anything else the runner refuses)."""
    if isinstance(message, EventBatch) and message.command is not None:
        return (message.command,)
    return unpack(message)


def decode_messages(body: bytes) -> Sequence[Envelope]:
    return unpack(decode_message(body))


def encode(message: EventEnvelope | CommandEnvelope | EventBatch) -> bytes:
    return message.model_dump_json().encode()
