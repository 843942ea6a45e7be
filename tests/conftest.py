"""Fixtures: an app on its own database, real sandbox servers on 127.0.0.1, tokens for each kind of user.

The backend follows the environment, as `.ci/run` sets it:
- no DATABASE_URL: a SQLite file in pytest's temporary directory;
- DATABASE_URL=postgresql://…: a fresh database created for this run (and dropped after it), so runs
  on one server cannot collide;
- REDIS_URL set: the shared state lives in that Redis under a key prefix unique to this run.

The six sandbox bureaus run once per session on free ports; every test starts with them registered as active
connectors through the seeding path (`seed_all`), their fresh secrets pushed to them, in normal mode with an
empty journal. No real DNS is consulted: the URL guard resolves through `RESOLVER_TABLE` below.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app, dispose
from app.config import sqlalchemy_url
from app.extensions import db, limiter
from app.sandbox.server import serve
from tests.helpers import bearer

RUN_ID = uuid.uuid4().hex[:10]
# Apps a test builds from the environment alone (configuration tests, the fuzz run's document) keep to this
# run too: its Redis prefix, and a job queue outside the repository's instance directory.
os.environ["REDIS_KEY_PREFIX"] = f"zsb-test-{RUN_ID}:"
os.environ["JOBS_SQLITE_PATH"] = os.path.join(tempfile.gettempdir(), f"zsb-test-{RUN_ID}-jobs.sqlite3")


def _postgres_database(base_url: str, suffix: str = ""):
    """Create a database of our own on the server of `base_url`; yield its URL; drop it afterwards."""
    url = sa.engine.make_url(sqlalchemy_url(base_url))
    name = f"zsb_test_{RUN_ID}{suffix}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql")):
        yield from _postgres_database(base)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture
def empty_database_url(tmp_path):
    """Another, empty database on the same backend (for migration tests)."""
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql")):
        yield from _postgres_database(base, suffix=f"_{uuid.uuid4().hex[:6]}")
    else:
        yield f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(scope="session")
def is_postgres(database_url) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture(scope="session")
def wechat_server():
    """The WeChat API stand-in, as a real HTTP server on 127.0.0.1."""
    from app.sandbox.wechat import create_wechat_app

    server = serve(create_wechat_app())
    yield server
    server.stop()


# What the tests' DNS knows: hostnames used to exercise the URL guard. Nothing here is ever connected to.
RESOLVER_TABLE = {
    "data.bureau.example.cn": ["203.119.25.1"],
    "intranet.bureau.example.cn": ["10.20.30.40"],
    "router.bureau.example.cn": ["192.168.1.1"],
    "docker.bureau.example.cn": ["172.17.0.2"],
    "metadata.bureau.example.cn": ["169.254.169.254"],
    "loop.bureau.example.cn": ["127.0.0.1"],
    "loop6.bureau.example.cn": ["::1"],
    "split.bureau.example.cn": ["203.119.25.1", "10.0.0.7"],
}


def resolver(host, port, *args, **kwargs):
    """socket.getaddrinfo over RESOLVER_TABLE: unknown names do not resolve."""
    addresses = RESOLVER_TABLE.get(host)
    if addresses is None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return [
        (socket.AF_INET6 if ipaddress.ip_address(a).version == 6 else socket.AF_INET, socket.SOCK_STREAM, 6, "",
         (a, port))
        for a in addresses
    ]


@pytest.fixture(scope="session")
def bureau_servers():
    """The six sandbox bureaus, as real HTTP servers on 127.0.0.1 (no secret until seeding pushes one)."""
    from app.sandbox.bureaus import KINDS, create_bureau_app
    from app.sandbox.connectors import reset

    servers = {kind: serve(create_bureau_app(kind)) for kind in KINDS}
    yield servers
    reset({kind: server.url for kind, server in servers.items()})  # releases requests held in hang mode
    # Each stop waits out the server loop's 0.5 s poll: stop them side by side.
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda server: server.stop(), servers.values()))


@pytest.fixture(scope="session")
def test_settings(database_url, wechat_server, bureau_servers, tmp_path_factory) -> dict:
    """Overrides every test app starts from; tests that need another app add to a copy."""
    return {
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "REDIS_KEY_PREFIX": f"zsb-test-{RUN_ID}:",
        # Rate-limit counters under a prefix of this run too: `limiter.reset()` between tests deletes every key
        # under the storage's prefix, which by default ("LIMITS") would reset other runs sharing the Redis.
        "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": f"zsb-test-{RUN_ID}-limits"},
        "WECHAT_API_BASE": wechat_server.url,
        "WECHAT_TIMEOUT_SECONDS": 2.0,
        "SANDBOX_BUREAU_URLS": {kind: server.url for kind, server in bureau_servers.items()},
        "CONNECTOR_RESOLVER": resolver,
        # Short enough that hanging bureaus cost the suite little; long enough for a loaded CI machine (at 1 s a
        # real-name check on a 2-core runner with four test processes once timed out: 503 instead of 200).
        "PREFILL_DEADLINE_SECONDS": 2.0,
        # Breakers would carry one test's failures into the next (the app lives for the session); the
        # breaker has its own tests on an app of its own.
        "CONNECTOR_CIRCUIT_FAILURE_THRESHOLD": 1_000_000,
        "CONNECTOR_HEALTH_RETRIES": 0,
        # Uploads stay in memory: a test run writes nothing into the repository's instance directory.
        "UPLOAD_STORAGE": "memory",
        # The audit logs' witness: a file of this run's, emptied with the tables before each test.
        "AUDIT_WITNESS_FILE": str(tmp_path_factory.mktemp("witness") / "audit-witness.jsonl"),
        # The job queue (with REDIS_URL it is in Redis under this run's prefix instead), emptied before each test.
        "JOBS_SQLITE_PATH": str(tmp_path_factory.mktemp("jobs") / "jobs.sqlite3"),
    }


@pytest.fixture(scope="session")
def app(test_settings):
    app = create_app(test_settings)
    with app.app_context():
        # Tests build the schema from the models; tests/test_migrations.py proves the migrations match.
        db.create_all()
    yield app
    with app.app_context():
        db.drop_all()
    dispose(app)
    _flush_redis(test_settings)


def _flush_redis(settings: dict) -> None:
    if not settings["REDIS_URL"]:
        return
    import redis

    client = redis.Redis.from_url(settings["REDIS_URL"])
    # Ours, and the job queue's (Huey names its keys huey.<kind>.<queue name>).
    for pattern in (settings["REDIS_KEY_PREFIX"] + "*", "huey.*." + settings["REDIS_KEY_PREFIX"] + "*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)
    client.close()


@pytest.fixture(autouse=True)
def fresh_state(request, test_settings):
    """Every test starts from the seeded catalogue and sandbox accounts, with no tokens or counters."""
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        _restore_seeded_state(app)
        # The chains were emptied: so is the file that witnesses their checkpoints.
        Path(app.config["AUDIT_WITNESS_FILE"]).unlink(missing_ok=True)
        _prepare_bureaus()
        _flush_redis(test_settings)
        app.extensions["jobs"].huey.flush()  # tasks queued by earlier tests (their rows are gone)
        from app.state import create_store

        if not test_settings["REDIS_URL"]:
            app.extensions["state"] = create_store(None)
        limiter.reset()
    yield
    with app.app_context():
        db.session.remove()


# Why not a transaction rolled back after each test (the usual pattern): the append-only logs write on
# connections of their own (app/ledger/chain.py: the write lock first, and a record must survive the
# request's rollback), so nearly every API test commits on more than one connection, and what one connection
# has not committed the other never sees. Instead the seeded rows are kept once per session and put back
# before each test: the same state as seeding again, in a tenth of the time.
SEEDED: dict[str, list[dict]] = {}


def _restore_seeded_state(app) -> None:
    """Empty every table and put the seeded rows back (seeding once, on first use)."""
    _empty_tables()
    if not SEEDED:
        from app.sandbox.seed import seed_all

        seed_all()
        SEEDED.update({table.name: [dict(row) for row in db.session.execute(table.select()).mappings()]
                       for table in db.metadata.sorted_tables})
        db.session.commit()
        return
    for table in db.metadata.sorted_tables:
        if SEEDED[table.name]:
            db.session.execute(table.insert(), SEEDED[table.name])
    db.session.commit()
    # What seeding's own commits do to this process's caches (app/catalogue/cache.py, the connector registry).
    from app.catalogue import cache
    from app.connectors.services.runtime import runtime

    cache.cache().invalidate(cache.read_revision())
    runtime().invalidate()


def _prepare_bureaus() -> None:
    """Normal mode and empty journals, then the connectors' secrets (as `flask dev` pushes them), all six
    bureaus at once."""
    from app.sandbox.connectors import push_secrets, reset
    from app.sandbox.seed import sandbox_secrets

    secrets = sandbox_secrets()
    list(BUREAU_CALLS.map(lambda item: (reset({item[0]: item[1][0]}), push_secrets({item[0]: item[1]})),
                          secrets.items()))


BUREAU_CALLS = ThreadPoolExecutor(6, thread_name_prefix="bureau-reset")


def _empty_tables() -> None:
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def make_app(test_settings):
    """Build another app from the test settings plus overrides; its database connections close afterwards."""
    made = []

    def make(**overrides):
        other = create_app({**test_settings, **overrides})
        made.append(other)
        return other

    yield make
    for other in made:
        dispose(other)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def row_counts(app):
    """A snapshot function: the row count of every table (to show a rejected request changed nothing)."""

    def snapshot() -> dict[str, int]:
        with app.app_context():
            return {
                t.name: db.session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in db.metadata.sorted_tables
            }

    return snapshot




@pytest.fixture
def login_citizen(client):
    """Log in through the WeChat stand-in as `openid`; returns the login response body."""

    def login(openid: str = "citizen-1") -> dict:
        response = client.post("/api/v1/auth/wechat/login", json={"code": f"dev-{openid}"})
        assert response.status_code == 200, response.json
        return response.json

    return login


@pytest.fixture
def citizen(login_citizen):
    """A citizen logged in through the WeChat stand-in: citizen(openid) → the citizen's id (in an app context)."""
    from app.accounts.models import Citizen

    def make(openid: str) -> str:
        login_citizen(openid)
        return db.session.scalars(sa.select(Citizen.id).where(Citizen.openid == openid)).one()

    return make


@pytest.fixture
def citizen_headers(login_citizen):
    """Authorization headers of a freshly logged-in sandbox citizen."""
    return bearer(login_citizen("citizen-1")["access_token"])


@pytest.fixture
def staff_headers(client):
    """Authorization headers for a sandbox staff account: staff_headers("admin")."""

    def headers(username: str, password: str = "sandbox-pass") -> dict:
        response = client.post("/api/v1/auth/staff/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.json
        return bearer(response.json["access_token"])

    return headers


class Bureaus:
    """Test-side handle on the session's sandbox bureaus: fault modes and their query journals."""

    def __init__(self, servers):
        self.servers = servers

    def url(self, kind: str) -> str:
        return self.servers[kind].url

    def set_mode(self, kind: str, mode: str, **options) -> None:
        import requests

        response = requests.post(f"{self.url(kind)}/_sandbox/mode", json={"mode": mode, **options}, timeout=5)
        assert response.status_code == 200, response.text

    def state(self, kind: str) -> dict:
        import requests

        return requests.get(f"{self.url(kind)}/_sandbox/state", timeout=5).json()

    def journal(self, kind: str) -> list[dict]:
        return self.state(kind)["journal"]


@pytest.fixture
def bureaus(bureau_servers):
    """The running bureaus (fresh_state has put them in normal mode with empty journals)."""
    return Bureaus(bureau_servers)


@pytest.fixture
def zhang(citizen_as):
    """Headers of a citizen bound as the sandbox person 张伟 (housing fund, property, married)."""
    return citizen_as("张伟", "410105198503120013")


@pytest.fixture
def reviewer(staff_headers):
    """Headers of the housing-fund centre's sandbox reviewer (department `gjj`)."""
    return staff_headers("reviewer-gjj")


@pytest.fixture
def citizen_as(client, login_citizen):
    """Log in a citizen and prove a sandbox person's identity (claim, then a face pass); returns headers."""

    def make(name: str, id_number: str, openid: str | None = None) -> dict:
        # Not the ID number in the openid: the login URL (with the code) reaches urllib3's debug log.
        openid = openid or "person-" + hashlib.sha256(id_number.encode()).hexdigest()[:16]
        from face_flow import prove  # a helper module of the tests, beside this one

        return prove(client, bearer(login_citizen(openid)["access_token"]), (name, id_number))

    return make
