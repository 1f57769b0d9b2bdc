import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def make_client(**overrides) -> TestClient:
    settings = Settings(exec_timeout_s=2.0, kill_grace_s=0.5, **overrides)
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def client():
    with make_client() as c:
        yield c
