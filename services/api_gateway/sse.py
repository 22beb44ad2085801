"""Writing server-sent events: `event:`/`id:`/`data:` frames, keep-alive comments, scrubbed payloads."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.api_gateway.envelope import dumps, scrub


def wants_event_stream(request: web.Request) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


class SseWriter:
    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response

    @classmethod
    async def open(cls, request: web.Request, *, retry_ms: int = 3000) -> SseWriter:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache, no-transform",
                "X-Accel-Buffering": "no",
            },
        )
        await response.prepare(request)
        writer = cls(response)
        await writer._write(f"retry: {retry_ms}\n\n")
        return writer

    async def _write(self, text: str) -> None:
        await self.response.write(text.encode("utf-8"))

    async def send(self, event: str, data: Any, *, event_id: str | int | None = None) -> None:
        frame = f"event: {event}\n"
        if event_id is not None:
            frame += f"id: {event_id}\n"
        # JSON on one line: newlines inside strings are escaped, so one `data:` line always suffices.
        frame += f"data: {dumps(scrub(data))}\n\n"
        await self._write(frame)

    async def comment(self, text: str) -> None:
        await self._write(f": {text}\n\n")

    async def close(self) -> None:
        try:
            await self.response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
