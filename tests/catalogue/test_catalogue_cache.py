"""Caching of catalogue responses: ETags and 304s, invalidation on writes, other processes within the TTL."""

from __future__ import annotations

import copy

import pytest

from app.catalogue import cache as catalogue
from app.catalogue.cache import CatalogueCache
from app.catalogue.seed import load_seed_file

SEED_MATTERS = {m["code"]: m for m in load_seed_file()["matters"]}
READS = [
    "/api/v1/matters",
    "/api/v1/matters?q=公积金",
    "/api/v1/matters/GJJ-GG-001",
    "/api/v1/stats/catalog",
    "/api/v1/data-elements",
    "/api/v1/bundles",
    "/api/v1/bundles/kaiban-canyin",
]


def renamed(code: str, name: str) -> dict:
    body = copy.deepcopy(SEED_MATTERS[code])
    body["name"] = name
    return body


@pytest.mark.parametrize("path", READS)
def test_reads_carry_a_strong_etag_and_answer_304(client, path):
    first = client.get(path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    max_age = round(client.application.config["CATALOGUE_CACHE_SECONDS"])
    assert first.headers["Cache-Control"] == f"public, max-age={max_age}"

    again = client.get(path, headers={"If-None-Match": etag})

    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    assert client.get(path, headers={"If-None-Match": '"something-else"'}).status_code == 200


def test_etag_differs_by_query_and_is_stable(client):
    one = client.get("/api/v1/matters?category=vehicle").headers["ETag"]
    assert client.get("/api/v1/matters?category=vehicle").headers["ETag"] == one
    # The same query spelt differently is the same response.
    assert client.get("/api/v1/matters?per_page=20&page=1&category=vehicle").headers["ETag"] == one
    assert client.get("/api/v1/matters?category=exit_entry").headers["ETag"] != one


def test_admin_write_shows_at_once_in_this_process(client, staff_headers):
    admin = staff_headers("admin")
    etag = client.get("/api/v1/matters?q=公积金").headers["ETag"]
    guide_etag = client.get("/api/v1/matters/GJJ-GG-001").headers["ETag"]

    response = client.put(
        "/api/v1/matters/GJJ-GG-001", json=renamed("GJJ-GG-001", "公积金退休提取(新)"), headers=admin
    )
    assert response.status_code == 200

    listed = client.get("/api/v1/matters?q=公积金", headers={"If-None-Match": etag})
    assert listed.status_code == 200
    assert "公积金退休提取(新)" in [item["name"] for item in listed.json["items"]]
    assert client.get("/api/v1/matters/GJJ-GG-001", headers={"If-None-Match": guide_etag}).status_code == 200


@pytest.fixture
def other_process(make_app):
    """A second app on the same database, as another gunicorn worker would be, with a clock we move."""
    other = make_app()
    now = [1000.0]
    with other.app_context():
        other.extensions["catalogue_cache"] = CatalogueCache(
            max_age=1.0, read_revision=catalogue.read_revision, clock=lambda: now[0]
        )
    return other, now


def test_other_processes_see_a_write_within_the_cache_time(client, staff_headers, other_process):
    other, now = other_process
    reader = other.test_client()
    assert (
        reader.get("/api/v1/matters?q=GJJ-GG-002").json["items"][0]["name"]
        == SEED_MATTERS["GJJ-GG-002"]["name"]
    )

    client.put(
        "/api/v1/matters/GJJ-GG-002",
        json=renamed("GJJ-GG-002", "缴存证明(改)"),
        headers=staff_headers("admin"),
    )

    # Within CATALOGUE_CACHE_SECONDS the other process may still answer from its cache...
    now[0] += 0.5
    assert (
        reader.get("/api/v1/matters?q=GJJ-GG-002").json["items"][0]["name"]
        == SEED_MATTERS["GJJ-GG-002"]["name"]
    )
    # ...and once it has passed, it re-reads the revision and answers afresh.
    now[0] += 0.6
    assert reader.get("/api/v1/matters?q=GJJ-GG-002").json["items"][0]["name"] == "缴存证明(改)"
    assert reader.get("/api/v1/matters/GJJ-GG-002").json["version"] == 2


def test_admin_write_bumps_the_revision_once(app, client, staff_headers):
    with app.app_context():
        before = catalogue.read_revision()

    client.put(
        "/api/v1/matters/GJJ-GG-002", json=renamed("GJJ-GG-002", "缴存证明"), headers=staff_headers("admin")
    )

    with app.app_context():
        assert catalogue.read_revision() == before + 1


# ------------------------------------------------------------------------------ the cache on its own


class Revisions:
    def __init__(self):
        self.value, self.reads = 1, 0

    def __call__(self):
        self.reads += 1
        return self.value


@pytest.fixture
def bare_cache(app):
    revisions, now = Revisions(), [0.0]
    with app.app_context():  # rendering uses the app's JSON settings
        yield (
            CatalogueCache(max_age=1.0, read_revision=revisions, max_entries=3, clock=lambda: now[0]),
            revisions,
            now,
        )


def test_cache_builds_once_per_key_and_revision(bare_cache):
    cache, revisions, now = bare_cache
    builds = []

    def build():
        builds.append(1)
        return {"n": len(builds)}

    first = cache.get("k", build)
    assert cache.get("k", build) == first and len(builds) == 1
    assert first.body == b'{"n": 1}'

    revisions.value = 2  # another process wrote...
    assert cache.get("k", build) == first  # ...unseen until max_age passes
    now[0] += 1.0
    assert cache.get("k", build).body == b'{"n": 2}' and len(builds) == 2


def test_cache_reads_the_revision_at_most_once_per_max_age(bare_cache):
    cache, revisions, now = bare_cache
    for _ in range(100):
        cache.get("k", dict)
    assert revisions.reads == 1
    now[0] += 1.0
    cache.get("k", dict)
    assert revisions.reads == 2


def test_cache_is_bounded_least_recently_used_first(bare_cache):
    cache, _, _ = bare_cache
    for key in "abc":
        cache.get(key, dict)
    cache.get("a", dict)  # a is now the most recent
    cache.get("d", dict)  # evicts b
    assert len(cache) == 3
    built = []
    cache.get("b", lambda: built.append(1) or {})
    cache.get("a", lambda: built.append(1) or {})
    assert built == [1]  # b had to be rebuilt; a was still there


def test_invalidate_drops_everything_and_adopts_the_revision(bare_cache):
    cache, revisions, _ = bare_cache
    cache.get("k", dict)
    cache.invalidate(7)
    assert len(cache) == 0 and cache.revision() == 7 and revisions.reads == 1


def test_an_entry_built_across_a_write_is_not_kept(bare_cache):
    cache, _, _ = bare_cache

    def build_while_someone_writes():
        cache.invalidate(2)  # a write in this process lands while we build
        return {"stale": True}

    cache.get("k", build_while_someone_writes)
    assert len(cache) == 0
