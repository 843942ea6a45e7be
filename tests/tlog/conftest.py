"""tlog's tests need none of the service: no app, database or sandbox servers.

The suite-wide autouse `fresh_state` (tests/conftest.py) starts those for every test that reaches it;
overriding it here keeps these tests as independent of the service as the library they test.
"""

import pytest


@pytest.fixture(autouse=True)
def fresh_state():
    yield
