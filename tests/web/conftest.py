from contextlib import contextmanager

import pytest

from app.main import create_app
from app.settings import Settings
from tests.webserver import client_for


@contextmanager
def make_client(**overrides):
    """An httpx client talking to a real server with a real worker pool."""
    settings = Settings(exec_timeout_s=2.0, kill_grace_s=0.5, **overrides)
    with client_for(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def client():
    with make_client() as c:
        yield c
