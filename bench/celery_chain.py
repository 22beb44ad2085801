"""Celery's safe chain for bench/bench_e2e.py: 4 no-op tasks chained, acks_late, publisher confirms, a
quorum queue on the same broker. The last task appends a byte to a file, so the bench sees each chain end
without a result backend (the pipeline's bench needs none either).

Worker: `celery -A bench.celery_chain worker` with DP_BENCH_CELERY_BROKER, DP_BENCH_CELERY_QUEUE and
DP_BENCH_CELERY_DONE in its environment (bench_e2e.py starts it)."""

from __future__ import annotations

import os

from celery import Celery, chain
from kombu import Queue

QUEUE = os.environ.get("DP_BENCH_CELERY_QUEUE", "dpbench.celery")
DONE = os.environ.get("DP_BENCH_CELERY_DONE", "/tmp/dpbench-celery-done")

app = Celery(
    "dpbench", broker=os.environ.get("DP_BENCH_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
)
app.conf.update(
    task_acks_late=True,
    task_ignore_result=True,
    broker_transport_options={"confirm_publish": True},
    task_queues=[Queue(QUEUE, queue_arguments={"x-queue-type": "quorum"}, durable=True)],
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=16,
    worker_hijack_root_logger=False,
    worker_enable_remote_control=False,  # no celery.pidbox exchange left on the broker
    broker_connection_retry_on_startup=True,
)


@app.task
def hop(step: int) -> int:
    return step + 1


@app.task
def last(step: int) -> int:
    with open(DONE, "ab", buffering=0) as f:
        f.write(b".")
    return step + 1


def send_chain() -> None:
    chain(hop.s(0), hop.s(), hop.s(), last.s()).apply_async()
