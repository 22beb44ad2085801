"""An OpenAI-compatible HTTP server for tests and benchmarks: /v1/chat/completions and /v1/embeddings.

By default it answers every prompt kind of `services.step_runner.llm.prompts` (it reads the
`Task: <kind>` line) with generic JSON that fits the schema in the prompt, so a whole step can run
against it. Tests script what comes next with `script(...)`: a JSON answer, a malformed answer, an HTTP
status (429 with Retry-After, 500), or a hang that outlasts the client's timeout. `delay_seconds` slows
every answer down (benchmarks); `max_in_flight` tells how many requests were open at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_TASK = re.compile(r"^Task: (\w+)", re.MULTILINE)
_TABLE = re.compile(r"^CREATE TABLE (\S+) \(.*?$(.*?)^\);", re.MULTILINE | re.DOTALL)
_COLUMN = re.compile(r'^\s+("(?:[^"]|"")+"|\S+) ', re.MULTILINE)
_COUNT = re.compile(r"exactly (\d+)")
_RELATED = re.compile(r"^Related tables: (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Reply:
    """One scripted answer: `json`, `text` (e.g. malformed), `status` (an HTTP error) or `hang`."""

    kind: str
    body: Any = None
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0

    @classmethod
    def json(cls, value: Any) -> Reply:
        return cls("json", body=value)

    @classmethod
    def text(cls, content: str) -> Reply:
        return cls("text", body=content)

    @classmethod
    def error(cls, status: int, *, retry_after: str | None = None, body: str = "scripted error") -> Reply:
        return cls("status", body=body, status=status, retry_after=retry_after)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Reply:
        return cls("hang", seconds=seconds)


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    task: str | None
    body: dict[str, Any]
    authorization: str | None
    received_at: float


@dataclass
class _Script:
    reply: Reply
    task: str | None


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _quote(name: str) -> str:
    # Always quoted: the fake knows no reserved words (a column may be called "group").
    return '"' + name.replace('"', '""') + '"'


def _tables(prompt: str) -> dict[str, list[str]]:
    """table name -> column names, read from the CREATE TABLE blocks of a prompt."""
    out: dict[str, list[str]] = {}
    for match in _TABLE.finditer(prompt):
        name = ".".join(_unquote(p) for p in match.group(1).split("."))
        out[name] = [_unquote(c) for c in _COLUMN.findall(match.group(2))]
    return out


def generic_answer(task: str | None, prompt: str) -> Any:
    """A well-formed answer for each prompt kind, grounded in the tables the prompt shows."""
    tables = _tables(prompt)
    count_match = _COUNT.search(prompt)
    count = int(count_match.group(1)) if count_match else 3
    names = list(tables) or ["unknown"]
    if task == "describe_table":
        name = names[0]
        return {
            "table_comment": f"Rows of {name}",
            "column_comments": {c: f"The {c} of a {name} row" for c in tables.get(name, [])},
        }
    if task == "propose_themes":
        return {
            "themes": [
                {
                    "name": f"Theme {i + 1}: {names[i % len(names)]}",
                    "description": f"Questions about {names[i % len(names)]}",
                    "related_tables": [names[i % len(names)]],
                    "entities": [names[i % len(names)]],
                    "metrics": ["row count"],
                }
                for i in range(count)
            ]
        }
    if task == "generate_pairs":
        related_match = _RELATED.search(prompt)
        related = [r.strip() for r in related_match.group(1).split(",")] if related_match else names
        related = [r for r in related if r in tables] or names
        pairs = []
        for i in range(count):
            table = related[i % len(related)]
            columns = tables.get(table) or ["*"]
            column = columns[(i // len(related)) % len(columns)]
            select = "*" if column == "*" else _quote(column)
            qualified = ".".join(_quote(p) for p in table.split("."))
            pairs.append(
                {
                    "question": f"What are the first {i + 1} values of {column} in {table}?",
                    "sql": f"SELECT {select} FROM {qualified} LIMIT {i + 1};",
                }
            )
        return {"pairs": pairs}
    if task == "repair_sql":
        return {"sql": None}
    if task == "summarize_scope":
        return {"summary": "This database holds " + ", ".join(names) + "."}
    return {"answer": "ok"}


def fake_vector(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 128) / 128.0 for i in range(dimensions)]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return [v / norm for v in raw]


@dataclass
class FakeOpenAI:
    delay_seconds: float = 0.0
    api_key: str | None = None
    embedding_dimensions: int = 16
    requests: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    # (model, prompt_tokens, completion_tokens) of every answer that carried a `usage`, in order.
    usage_sent: list[tuple[str, int, int]] = field(default_factory=list)
    _scripts: dict[str, deque[_Script]] = field(
        default_factory=lambda: {"chat": deque(), "embeddings": deque()}
    )
    _runner: web.AppRunner | None = None
    _port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def script(self, *replies: Reply, endpoint: str = "chat", task: str | None = None) -> None:
        """Queue answers; with `task`, only a prompt of that kind takes them."""
        self._scripts[endpoint].extend(_Script(r, task) for r in replies)

    def chat_requests(self, task: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions") and task in (None, r.task)]

    async def start(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _next(self, endpoint: str, task: str | None) -> Reply | None:
        queue = self._scripts[endpoint]
        for item in list(queue):
            if item.task is None or item.task == task:
                queue.remove(item)
                return item.reply
        return None

    def _authorized(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _handle(self, request: web.Request, endpoint: str) -> tuple[dict[str, Any], Reply | None, str]:
        body = await request.json()
        prompt = ""
        if endpoint == "chat":
            prompt = "\n".join(
                str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user"
            )
        first_user = next(
            (m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"), ""
        )
        task_match = _TASK.search(str(first_user))
        task = task_match.group(1) if task_match else None
        self.requests.append(
            RecordedRequest(request.path, task, body, request.headers.get("Authorization"), time.monotonic())
        )
        return body, self._next(endpoint, task), prompt

    async def _respond(self, reply: Reply | None) -> web.StreamResponse | None:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)  # simulated provider latency, set by the test
        if reply is None:
            return None
        if reply.kind == "hang":
            await asyncio.sleep(reply.seconds)  # a provider that hangs: the client's timeout is under test
            return web.json_response({"error": "hung"}, status=504)
        if reply.kind == "status":
            headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
            return web.json_response({"error": {"message": reply.body}}, status=reply.status, headers=headers)
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"error": {"message": "bad api key"}}, status=401)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body, reply, prompt = await self._handle(request, "chat")
            task = self.requests[-1].task
            early = await self._respond(reply)
            if early is not None:
                return early
            if reply is not None and reply.kind == "text":
                content = str(reply.body)
            elif reply is not None and reply.kind == "json":
                content = json.dumps(reply.body, ensure_ascii=False)
            else:
                content = json.dumps(generic_answer(task, prompt), ensure_ascii=False)
            usage = {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(content) // 4}
            self.usage_sent.append(
                (str(body.get("model", "fake")), usage["prompt_tokens"], usage["completion_tokens"])
            )
            return web.json_response(
                {
                    "id": f"chatcmpl-{len(self.requests)}",
                    "object": "chat.completion",
                    "model": body.get("model", "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        finally:
            self.in_flight -= 1

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.json_response({"error": {"message": "bad api key"}}, status=401)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body, reply, _ = await self._handle(request, "embeddings")
            early = await self._respond(reply)
            if early is not None:
                return early
            if reply is not None and reply.kind in {"json", "text"}:
                return web.Response(
                    text=reply.body if reply.kind == "text" else json.dumps(reply.body),
                    content_type="application/json",
                )
            inputs = body.get("input", [])
            inputs = [inputs] if isinstance(inputs, str) else inputs
            dims = int(body.get("dimensions") or self.embedding_dimensions)
            tokens = sum(len(str(t)) // 4 + 1 for t in inputs)
            self.usage_sent.append((str(body.get("model", "fake")), tokens, 0))
            return web.json_response(
                {
                    "object": "list",
                    "model": body.get("model", "fake"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                    "data": [
                        {"object": "embedding", "index": i, "embedding": fake_vector(str(t), dims)}
                        for i, t in enumerate(inputs)
                    ],
                }
            )
        finally:
            self.in_flight -= 1


class ThreadedFake:
    """The fake server on its own event loop in a thread, so the services (subprocesses) reach it while
    the tests' loops come and go."""

    def __init__(self) -> None:
        self.fake = FakeOpenAI(embedding_dimensions=16)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(10)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def provider_env(fake: FakeOpenAI) -> dict[str, str]:
    """The services' settings that point the LLM and the embedder at the fake."""
    return {
        "DP_LLM_PROVIDER": "openai",
        "DP_LLM_BASE_URL": fake.base_url,
        "DP_LLM_MODEL": "fake-chat",
        "DP_LLM_MAX_RETRIES": "0",
        "DP_EMBEDDING_PROVIDER": "openai",
        "DP_EMBEDDING_BASE_URL": fake.base_url,
        "DP_EMBEDDING_MODEL": "fake-embed",
        "DP_EMBEDDING_DIMENSIONS": "16",
    }
