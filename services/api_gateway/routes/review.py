"""Review before load (task parameter review_before_load): list a task's question/SQL pairs, decide on
them one by one or by filter, then complete the review (step 4 loads exactly the approved pairs) or
abandon it (nothing is loaded; the task ends `cancelled`).

Each decision is a `pair_reviewed` event the gateway publishes, with who made it (the token's name and
role, never the token) and the question and SQL before and after, so the task's history shows who
approved what. The answer waits (bounded) until the read model shows the decision. An edited SQL goes
through the SQL gate and EXPLAIN on the task's business database at once (review_sql.py). Completing
rewrites the pair files atomically from the decisions, keeping the originals (review_pairs.py), and asks
the scheduler to resume; abandoning asks it to end the task. Deciding needs the operator role; reading,
the viewer role.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from aiohttp import web

from services.api_gateway import review_pairs as rp
from services.api_gateway.adapters import read_models, review_reads
from services.api_gateway.adapters.task_files import task_dir
from services.api_gateway.auth import request_principal
from services.api_gateway.envelope import ok
from services.api_gateway.errors import Conflict, InvalidParams, NotFound, ServiceUnavailable
from services.api_gateway.keys import BROKER, METRICS, POOL, SETTINGS
from services.api_gateway.review_sql import check_sql
from services.api_gateway.schemas import review as schema
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec
from services.api_gateway.validation import (
    parse_model,
    parse_query,
    read_json_object,
    require_task_id,
    task_not_found,
)
from services.api_gateway.waiting import wait_until
from shared.commands import AbandonReview, CompleteReview
from shared.events import OutputRegistered, PairReviewed
from shared.steps import StepName

_VISIBLE_WITHIN = 5.0  # seconds a decision's answer waits for the read model to show it
_TASKS = f"{DATA_PIPELINE}/tasks/{{task_id}}"


async def _task(request: web.Request, task_id: str, *, deciding: bool) -> Any:
    row = await read_models.get_task(request.app[POOL], task_id)
    if row is None:
        raise task_not_found(task_id)
    if deciding and row["status"] != "awaiting_review":
        raise Conflict(
            f"the task is {row['status']}, not awaiting review (create it with review_before_load: true)",
            extra={"task_status": row["status"]},
        )
    return row


async def _pairs(request: web.Request, task_id: str) -> list[rp.ReviewPair]:
    directory = task_dir(request.app[SETTINGS].data_root, task_id)
    try:
        pairs = await asyncio.to_thread(rp.load_review_pairs, directory)
    except rp.PairFileError as exc:
        raise Conflict(f"a pair file cannot be read: {exc}") from None
    return rp.with_decisions(pairs, await review_reads.decisions(request.app[POOL], task_id))


def _pair_id(request: web.Request) -> str:
    pair_id = request.match_info.get("pair_id", "")
    if len(pair_id) != 16 or any(c not in "0123456789abcdef" for c in pair_id):
        raise InvalidParams("invalid pair id: 16 lower-case hexadecimal characters", invalid=["pair_id"])
    return pair_id


def _find(pairs: list[rp.ReviewPair], pair_id: str) -> rp.ReviewPair:
    for pair in pairs:
        if pair.pair_id == pair_id:
            return pair
    raise NotFound(f"pair not found: {pair_id} (GET /tasks/{{task_id}}/pairs lists them)")


async def _publish(request: web.Request, task_id: str, event: Any) -> Any:
    broker = request.app[BROKER]
    try:
        return await asyncio.wait_for(broker.publisher.event(task_id, event), timeout=broker.publish_timeout)
    except TimeoutError:
        raise ServiceUnavailable(
            "the message broker did not confirm the decision; send it again", extra={"retryable": True}
        ) from None


def _reviewed(
    request: web.Request, pair: rp.ReviewPair, decision: str, status: str, **after: Any
) -> PairReviewed:
    principal = request_principal(request)
    return PairReviewed(
        pair_id=pair.pair_id,
        decision=decision,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        question_before=pair.question,
        question_after=after.get("question", pair.question),
        sql_before=pair.sql,
        sql_after=after.get("sql", pair.sql),
        sql_valid=after.get("sql_valid", None if pair.verdict == "unchecked" else pair.verdict == "valid"),
        sql_error=after.get("sql_error", pair.error),
        actor=principal.name,
        actor_role=principal.role,
        bulk=after.get("bulk", False),
    )


async def list_pairs(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    query = parse_query(schema.PairListQuery, request)
    row = await _task(request, task_id, deciding=False)
    pairs = await _pairs(request, task_id)
    found = [
        p
        for p in pairs
        if rp.matches(
            p,
            status=query.status,
            verdict=query.verdict,
            repaired=query.repaired,
            theme=query.theme,
            flagged=query.flagged,
        )
    ]
    page = found[query.offset : query.offset + query.limit]
    data = schema.PairPage(
        task_id=task_id,
        task_status=row["status"],
        pairs=[schema.ReviewPairOut(**p.public()) for p in page],
        matched=len(found),
        offset=query.offset,
        limit=query.limit,
        counts=schema.ReviewCounts(**rp.counts(pairs)),
        themes=sorted({p.theme for p in pairs if p.theme}),
    )
    return ok(f"{len(page)} of {len(found)} pairs", data.model_dump(mode="json"))


async def decide_pair(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    pair_id = _pair_id(request)
    req = parse_model(schema.PairDecisionRequest, await read_json_object(request))
    await _task(request, task_id, deciding=True)
    pair = _find(await _pairs(request, task_id), pair_id)
    check = None
    if req.decision == "edit":
        if req.question is None and req.sql is None:
            raise InvalidParams(
                "an edit gives a new question, a new sql, or both", invalid=["question", "sql"]
            )
        after: dict[str, Any] = {"question": (req.question or pair.question).strip()}
        status = "approved" if pair.verdict != "invalid" else "pending"
        if req.sql is not None and req.sql.strip() != pair.sql.strip():
            check = await check_sql(request, task_id, req.sql)
            if not check.passes:
                raise InvalidParams(
                    f"the edited SQL does not pass: {check.error}; the pair is unchanged",
                    invalid=["sql"],
                    extra={"sql_check": check.public()},
                )
            after.update(sql=req.sql.strip(), sql_valid=True, sql_error=None)
            status = "approved"
        event = _reviewed(request, pair, "edit", status, **after)
    else:
        if req.question is not None or req.sql is not None:
            raise InvalidParams("question and sql go with decision edit", invalid=["decision"])
        if req.decision == "approve" and pair.verdict == "invalid":
            raise Conflict(
                f"the pair's SQL does not pass validation ({pair.error}): edit it before approving it",
                extra={"verdict": "invalid"},
            )
        event = _reviewed(
            request, pair, req.decision, "approved" if req.decision == "approve" else "rejected"
        )
    envelope = await _publish(request, task_id, event)
    pool = request.app[POOL]
    await wait_until(
        lambda: review_reads.decided_at(pool, task_id, pair_id, envelope.occurred_at), _VISIBLE_WITHIN
    )
    pairs = await _pairs(request, task_id)
    data = schema.PairDecided(
        task_id=task_id,
        pair=schema.ReviewPairOut(**_find(pairs, pair_id).public()),
        sql_check=schema.SqlCheckOut(**check.public()) if check else None,
        counts=schema.ReviewCounts(**rp.counts(pairs)),
    )
    return ok(f"pair {event.status}", data.model_dump(mode="json"))


async def bulk_decide(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    req = parse_model(schema.BulkDecisionRequest, await read_json_object(request))
    await _task(request, task_id, deciding=True)
    f = req.filter
    found = [
        p
        for p in await _pairs(request, task_id)
        if rp.matches(
            p, status=f.status, verdict=f.verdict, repaired=f.repaired, theme=f.theme, flagged=f.flagged
        )
    ]
    approve = req.decision == "approve"
    chosen = [p for p in found if not (approve and p.verdict == "invalid")]
    status = "approved" if approve else "rejected"
    last = None
    for pair in chosen:
        if pair.status != status:
            last = (
                pair.pair_id,
                await _publish(request, task_id, _reviewed(request, pair, req.decision, status, bulk=True)),
            )
    if last is not None:
        pool, (pair_id, envelope) = request.app[POOL], last
        await wait_until(
            lambda: review_reads.decided_at(pool, task_id, pair_id, envelope.occurred_at), _VISIBLE_WITHIN
        )
    data = schema.BulkDecided(
        task_id=task_id,
        decision=req.decision,
        matched=len(found),
        decided=len(chosen),
        skipped_invalid=len(found) - len(chosen),
        counts=schema.ReviewCounts(**rp.counts(await _pairs(request, task_id))),
    )
    return ok(f"{len(chosen)} pairs {status}", data.model_dump(mode="json"))


async def preview_pair(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    pair_id = _pair_id(request)
    await _task(request, task_id, deciding=False)
    pair = _find(await _pairs(request, task_id), pair_id)
    preview = request.app[SETTINGS].review_preview_rows
    check = await check_sql(request, task_id, pair.sql, preview=preview)
    data = schema.PairPreview(
        task_id=task_id, pair_id=pair_id, sql_check=schema.SqlCheckOut(**check.public())
    )
    return ok("the SQL passes" if check.passes else "the SQL does not pass", data.model_dump(mode="json"))


async def _register(request: web.Request, task_id: str, names: list[tuple[str, str]]) -> None:
    """The rewritten pair files and their originals are outputs of the task (listed, downloadable)."""
    directory = task_dir(request.app[SETTINGS].data_root, task_id)
    rows = {r["file_name"]: r for r in await read_models.outputs(request.app[POOL], task_id)}
    for name, original in names:
        row = rows.get(name)
        for file_name, primary, kind, text in (
            (original, False, "backup", f"{name} before the review"),
            (name, True, "json", "reviewed question/SQL pairs: the approved ones, as edited"),
        ):
            data = await asyncio.to_thread((directory / file_name).read_bytes)
            event = OutputRegistered(
                step=StepName(row["step_name"])
                if row and row["step_name"] in StepName._value2member_map_
                else None,
                execution_id=row["execution_id"] if row else None,
                file_name=file_name,
                file_type=kind,
                relative_path=file_name,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                is_primary=primary,
                description=text,
            )
            await _publish(request, task_id, event)


async def complete_review(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    await _task(request, task_id, deciding=True)
    pairs = await _pairs(request, task_id)
    counts = rp.counts(pairs)
    if counts["approved"] == 0:
        raise Conflict(
            "no pair is approved: approve the pairs to load, or abandon the review (nothing is loaded)",
            extra={"task_status": "awaiting_review"},
        )
    directory = task_dir(request.app[SETTINGS].data_root, task_id)
    written = await asyncio.to_thread(rp.rewrite_pair_files, directory, pairs)
    await _register(request, task_id, written)
    principal = request_principal(request)
    command = CompleteReview(
        actor=principal.name,
        actor_role=principal.role,
        approved=counts["approved"],
        rejected=counts["rejected"],
        undecided=counts["pending"],
        edited=counts["edited"],
    )
    envelope = await request.app[BROKER].send_to_scheduler(command, task_id)
    request.app[METRICS].commands.labels(command.type).inc()
    data = schema.ReviewCompletedOut(
        task_id=task_id,
        command=command.type,
        command_id=str(envelope.command_id),
        approved=counts["approved"],
        rejected=counts["rejected"],
        undecided=counts["pending"],
        edited=counts["edited"],
        pair_files=[n for n, _ in written],
        original_files=[o for _, o in written],
    )
    return ok("review completed: step 4 loads the approved pairs", data.model_dump(mode="json"), status=202)


async def abandon_review(request: web.Request) -> web.Response:
    task_id = require_task_id(request)
    await _task(request, task_id, deciding=True)
    principal = request_principal(request)
    command = AbandonReview(actor=principal.name, actor_role=principal.role)
    envelope = await request.app[BROKER].send_to_scheduler(command, task_id)
    request.app[METRICS].commands.labels(command.type).inc()
    data = schema.ReviewAbandonedOut(
        task_id=task_id, command=command.type, command_id=str(envelope.command_id)
    )
    return ok(
        "review abandoned: nothing is loaded, the task ends cancelled",
        data.model_dump(mode="json"),
        status=202,
    )


ROUTES = [
    RouteSpec(
        "GET",
        f"{_TASKS}/pairs",
        list_pairs,
        "A task's question/SQL pairs with their verdict and review status (review before load)",
        "review",
        query=schema.PairListQuery,
        response=schema.PairPage,
        errors=(400, 401, 404, 409, 503),
        role="viewer",
    ),
    RouteSpec(
        "POST",
        f"{_TASKS}/review/bulk",
        bulk_decide,
        "Approve or reject every pair matching a filter (approval skips invalid SQL)",
        "review",
        body=schema.BulkDecisionRequest,
        response=schema.BulkDecided,
        errors=(400, 401, 404, 409, 415, 503),
        role="operator",
    ),
    RouteSpec(
        "PATCH",
        f"{_TASKS}/pairs/{{pair_id}}",
        decide_pair,
        "Approve, reject or edit one pair (an edited SQL is checked with the SQL gate and EXPLAIN at once)",
        "review",
        body=schema.PairDecisionRequest,
        response=schema.PairDecided,
        errors=(400, 401, 404, 409, 415, 503),
        role="operator",
    ),
    RouteSpec(
        "GET",
        f"{_TASKS}/pairs/{{pair_id}}/preview",
        preview_pair,
        "A pair's SQL checked now: the gate's verdict, EXPLAIN's plan and (DP_REVIEW_PREVIEW_ROWS) 5 rows",
        "review",
        response=schema.PairPreview,
        errors=(400, 401, 404, 409, 503),
        role="operator",
        rate_limited=True,
    ),
    RouteSpec(
        "POST",
        f"{_TASKS}/review/complete",
        complete_review,
        "Complete the review: the pair files keep the approved pairs, and step 4 loads them",
        "review",
        response=schema.ReviewCompletedOut,
        statuses=(202,),
        errors=(400, 401, 404, 409, 503),
        role="operator",
    ),
    RouteSpec(
        "POST",
        f"{_TASKS}/review/abandon",
        abandon_review,
        "Abandon the review: nothing is loaded, the task ends cancelled",
        "review",
        response=schema.ReviewAbandonedOut,
        statuses=(202,),
        errors=(400, 401, 404, 409, 503),
        role="operator",
    ),
]
