"""Short-lived shared state: token revocations, failure counters, nonces.

Two implementations of one small interface: `RedisStore` (production: shared by every process and host)
and `MemoryStore` (the embedded default for development and tests: one process only). `create_store`
picks one from REDIS_URL, so no code outside this module knows which it got.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Protocol


class EphemeralStore(Protocol):
    """Keys that expire by themselves. Every method is atomic."""

    def set(self, key: str, ttl_seconds: int) -> None:
        """Mark `key` as present for `ttl_seconds`."""

    def exists(self, key: str) -> bool:
        """Whether `key` is present and not expired."""

    def incr(self, key: str, ttl_seconds: int) -> int:
        """Add one to the counter `key` and return it; the window starts with the first increment."""

    def ttl(self, key: str) -> int:
        """Seconds until `key` expires (0 if absent)."""

    def delete(self, key: str) -> None:
        """Forget `key`."""

    def put(self, key: str, value: str, ttl_seconds: int) -> None:
        """Keep the short text `value` under `key` for `ttl_seconds` (e.g. a console session's record)."""

    def get(self, key: str) -> str | None:
        """The text put under `key`, or None when absent or expired."""

    def exists_and_get(self, key: str, others: list[str]) -> tuple[bool, list[str | None]]:
        """Whether `key` is present, and the texts under `others`, in one round trip (the hot path's revocation
        check and the version stamps of what it may serve from memory: app/web/readcache.py)."""

    def renew(self, keys: list[str], ttl_seconds: int) -> None:
        """Put a new random text under each of `keys` (a version stamp: never one it held before)."""

    def put_if_absent(self, key: str, value: str, ttl_seconds: int) -> bool:
        """Put `value` under `key` unless something is there; whether it did."""

    def ping(self) -> bool:
        """Whether the backing service answers (False, not an exception, when it does not)."""

    def close(self) -> None:
        """Let go of any connection held (an app being disposed of; the store reconnects if used again)."""


class MemoryStore:
    """In-process store for development and tests. Not shared between processes: production uses Redis."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, tuple[int | str, float]] = {}

    def _live(self, key: str):
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._data[key]
            return None
        return item

    def set(self, key: str, ttl_seconds: int) -> None:
        with self._lock:
            self._data[key] = (1, self._clock() + ttl_seconds)

    def exists(self, key: str) -> bool:
        with self._lock:
            return self._live(key) is not None

    def incr(self, key: str, ttl_seconds: int) -> int:
        with self._lock:
            item = self._live(key)
            value, expires = (item[0] + 1, item[1]) if item else (1, self._clock() + ttl_seconds)
            self._data[key] = (value, expires)
            return value

    def ttl(self, key: str) -> int:
        with self._lock:
            item = self._live(key)
            return max(0, int(item[1] - self._clock() + 0.999)) if item else 0

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def put(self, key: str, value: str, ttl_seconds: int) -> None:
        with self._lock:
            self._data[key] = (value, self._clock() + ttl_seconds)

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._live(key)
            return item[0] if item and isinstance(item[0], str) else None

    def exists_and_get(self, key: str, others: list[str]) -> tuple[bool, list[str | None]]:
        with self._lock:
            present = self._live(key) is not None
        return present, [self.get(other) for other in others]

    def renew(self, keys: list[str], ttl_seconds: int) -> None:
        for key in keys:
            self.put(key, fresh_stamp(), ttl_seconds)

    def put_if_absent(self, key: str, value: str, ttl_seconds: int) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (value, self._clock() + ttl_seconds)
            return True

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass


class RedisStore:
    """The production store: one Redis shared by every API process."""

    def __init__(self, client, prefix: str = ""):
        self._redis = client
        self._prefix = prefix

    def _key(self, key: str) -> str:
        return self._prefix + key

    def set(self, key: str, ttl_seconds: int) -> None:
        self._redis.set(self._key(key), 1, ex=max(1, int(ttl_seconds)))

    def exists(self, key: str) -> bool:
        return bool(self._redis.exists(self._key(key)))

    def incr(self, key: str, ttl_seconds: int) -> int:
        # INCR and EXPIRE NX in one round trip: the window is set once, by the first failure.
        pipe = self._redis.pipeline()
        pipe.incr(self._key(key))
        pipe.expire(self._key(key), max(1, int(ttl_seconds)), nx=True)
        value, _ = pipe.execute()
        return int(value)

    def ttl(self, key: str) -> int:
        return max(0, int(self._redis.ttl(self._key(key))))

    def delete(self, key: str) -> None:
        self._redis.delete(self._key(key))

    def put(self, key: str, value: str, ttl_seconds: int) -> None:
        self._redis.set(self._key(key), value.encode(), ex=max(1, int(ttl_seconds)))

    def get(self, key: str) -> str | None:
        value = self._redis.get(self._key(key))
        return value.decode() if value is not None else None

    def exists_and_get(self, key: str, others: list[str]) -> tuple[bool, list[str | None]]:
        # One MGET rather than a pipeline of EXISTS and MGET: the same round trip, a third of redis-py's work
        # (this runs on every authenticated request). `set` stores "1", so a present key reads as not None.
        values = self._redis.mget([self._key(key), *(self._key(other) for other in others)])
        return values[0] is not None, [value.decode() if value is not None else None for value in values[1:]]

    def renew(self, keys: list[str], ttl_seconds: int) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.set(self._key(key), fresh_stamp(), ex=max(1, int(ttl_seconds)))
        pipe.execute()

    def put_if_absent(self, key: str, value: str, ttl_seconds: int) -> bool:
        return bool(self._redis.set(self._key(key), value.encode(), ex=max(1, int(ttl_seconds)), nx=True))

    def ping(self) -> bool:
        import redis

        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._redis.connection_pool.disconnect()


def fresh_stamp() -> str:
    """A version stamp's new value (app/web/readcache.py): random, so it never repeats an earlier one."""
    return secrets.token_hex(8)


def create_store(redis_url: str | None, prefix: str = "") -> EphemeralStore:
    """RedisStore when a URL is configured, MemoryStore otherwise."""
    if not redis_url:
        return MemoryStore()
    import redis

    # Short timeouts: a slow Redis must not hold a request thread for long.
    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    return RedisStore(client, prefix)
