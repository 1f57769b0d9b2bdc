import pytest

from app.main import create_app
from app.settings import Settings
from tests.webserver import client_for


@pytest.fixture(scope="package")
def served():
    """The real app with a real (small) worker pool: probes must get the answers they expect."""
    with client_for(create_app(Settings(max_concurrent_runs=1, spare_workers=0))) as client:
        yield client
