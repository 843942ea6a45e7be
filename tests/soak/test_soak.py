"""The soak, short (bench/soak.py): the whole service under a mixed load for seconds, with every fault, on
servers of its own (a private PostgreSQL cluster and redis-server on their own ports), then the invariants.

Asserts what a user would notice, not speed: every acknowledged submission stored and submitted, every
notification sent, every chain, tree and checkpoint verifying, no 500 (503s during the outages only), and the
service answering again by itself after each fault. `python bench/soak.py` is the full version.
"""

from __future__ import annotations

import io

import pytest

from bench.soak import FAULTS, run
from bench.stack import have_private_servers

missing = have_private_servers()
pytestmark = pytest.mark.skipif(missing is not None, reason=f"the soak starts its own servers: needs {missing} "
                                                             "(Debian: postgresql, redis-server)")


def test_a_short_soak_with_every_fault_loses_nothing():
    out = io.StringIO()
    report = run(24, FAULTS, workers=2, out=out)
    assert report["problems"] == [], out.getvalue()
    assert report["acknowledged"] > 0, out.getvalue()
    for name, recovered in report["faults"]:
        assert recovered is not None and recovered < 15, (name, out.getvalue())
    # Outages answer 503, nothing else of the 5xx kind (run() lists any other as a problem).
    assert any("outage" in answers for answers in report["statuses"].values()), out.getvalue()
