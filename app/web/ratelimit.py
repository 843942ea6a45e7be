"""Flask-Limiter, with its storage and settings kept per app instead of per Limiter instance.

Flask-Limiter binds one storage to the `Limiter` object, so a second `create_app` in the same process (the
test suite builds several; so may a management script) would re-point the first app's counters at the
second app's storage. This subclass keeps the per-app parts — storage, strategy, enabled flag, key prefix —
in `app.extensions`, and reads them from the current app at request time.
"""

from __future__ import annotations

from flask import Flask, current_app, has_app_context
from flask_limiter import Limiter

from app.errors import OWN_RETRY_AFTER

PER_APP = ("_storage", "_limiter", "enabled", "_key_prefix")
EXTENSION = "zsb_rate_limits"


def _per_app(name: str) -> property:
    fallback = f"_fallback{name}"

    def get(self):
        if not self._binding and has_app_context():
            values = current_app.extensions.get(EXTENSION)
            if values is not None:
                return values[name]
        return self.__dict__.get(fallback)

    def set(self, value):
        self.__dict__[fallback] = value

    return property(get, set)


class PerAppLimiter(Limiter):
    """A Limiter whose storage and settings belong to each app it is initialised with."""

    _binding = False
    _storage = _per_app("_storage")
    _limiter = _per_app("_limiter")
    enabled = _per_app("enabled")
    _key_prefix = _per_app("_key_prefix")

    def init_app(self, app: Flask) -> None:
        # Before Flask-Limiter's own: after_request functions run last-registered first, so this one sees
        # the headers Flask-Limiter adds.
        app.after_request(retry_after_only_when_refused)
        self._binding = True
        try:
            # Start from the constructor's values, not the previous app's, then let this app's config fill in.
            self._key_prefix = ""
            self.enabled = True
            super().init_app(app)
            app.extensions[EXTENSION] = {name: getattr(self, name) for name in PER_APP}
        finally:
            self._binding = False


def close_storage(app: Flask) -> None:
    """Close the app's rate-limit storage's Redis connections, if it has any (limits' RedisStorage keeps its
    redis client as `.storage`; the memory storage keeps a dict there)."""
    pool = getattr(getattr(app.extensions[EXTENSION]["_storage"], "storage", None), "connection_pool", None)
    if pool is not None:
        pool.disconnect()


RETRY_STATUSES = frozenset({429, 503})


def retry_after_only_when_refused(response):
    """Flask-Limiter's headers put `Retry-After` on every answer; it means "wait before retrying", so a 200 or
    a 401 carrying it misleads clients that honour it (RFC 9110: 503 and 3xx, here 429 and 503). On a 503 the
    service's own value stands (an outage's few seconds), not the rate-limit window Flask-Limiter puts there."""
    if response.status_code not in RETRY_STATUSES:
        response.headers.pop("Retry-After", None)
    elif response.status_code == 503 and OWN_RETRY_AFTER in response.headers:
        response.headers["Retry-After"] = response.headers.pop(OWN_RETRY_AFTER)
    return response
