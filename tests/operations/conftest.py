"""Workers started as the compose file starts them: one per set of queues."""

import pytest

from tests.conftest import WorkerProcess


class QueueWorker(WorkerProcess):
    """A real ``celery worker`` process consuming ``queues``, on the broker already in use."""

    def __init__(self, *, queues, concurrency, broker, email_url, extra_env=None):
        super().__init__(
            email_url=email_url,
            broker=broker,
            queues=queues,
            concurrency=concurrency,
            extra_env=extra_env,
        )


@pytest.fixture
def redis_broker(transactional_db):
    """An empty Redis database as this process's broker, restored afterwards."""
    import redis

    from tests.conftest import use_broker
    from tests.services import redis_url, require_postgres

    require_postgres()
    url = redis_url()
    redis.Redis.from_url(url).flushdb()
    old = use_broker(url)
    try:
        yield url
    finally:
        use_broker(*old)


@pytest.fixture
def start_worker(redis_broker):
    started = []

    def start(**kwargs):
        kwargs.setdefault("email_url", "consolemail://")
        worker = QueueWorker(broker=redis_broker, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


class SlowInbox:
    """An SMTP server that takes ``delay`` seconds to accept each message."""

    def __init__(self, delay):
        self.delay = delay
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        import asyncio

        await asyncio.sleep(self.delay)
        self.count += 1
        return "250 Message accepted for delivery"


@pytest.fixture
def slow_smtp():
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = SlowInbox(delay=1.0)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{port}"
    try:
        yield inbox
    finally:
        controller.stop()
