"""Fixtures of the auth service's integration tests."""

from __future__ import annotations

import pytest
from auth import create_app, service
from gateway_common.config import Settings


@pytest.fixture(scope="module")
def app(service_env):
    """The auth app on this run's throwaway database, with the test merchant seeded."""
    app = create_app(Settings.from_env("auth"))
    service.seed_test_merchant(app.extensions["db"], app.extensions["secret_box"])
    return app
