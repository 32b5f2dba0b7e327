import pytest
import pytest_asyncio

from ringlog.client import Client
from ringlog.natsserver import NatsServer
from schemas.subjects import Subjects
from tests.integration.harness import LogReader, new_settings


@pytest.fixture
def nats_server(tmp_path):
    """A fresh nats-server per test: a free port and its own store (starts in ~0.1 s)."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(nats_server, tmp_path):
    return new_settings(nats_server.url, tmp_path / "data")


@pytest_asyncio.fixture
async def client(settings):
    client = await Client.connect(settings.nats_url, prefix=settings.prefix)
    yield client
    await client.close()


@pytest.fixture
def log(settings):
    return LogReader(settings.nats_url, Subjects(settings.prefix))


@pytest_asyncio.fixture
async def services(settings):
    """Start services by name inside the test's event loop; all are stopped afterwards."""
    from tests.integration.harness import start_service

    running = []

    async def start(*names: str):
        for name in names:
            running.append(await start_service(name, settings))

    yield start
    for service in reversed(running):
        await service.shutdown()
