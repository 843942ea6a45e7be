"""The registry of face-verification adapters, selected by configuration name (`FACE_PROVIDER`).

Built-in adapters (`sandbox`, `wechat`, `local`) are listed here by dotted path and imported on first use,
so listing them costs nothing and `local` can be named even where its optional packages are missing.
Third-party packages add adapters through the `identity.face_adapters` entry-point group:

    [options.entry_points]
    identity.face_adapters =
        acme = acme_face.adapter:AcmeFaceAdapter

and code can `register(cls)` an adapter class directly (tests, plugins loaded by hand). An adapter is a
`FaceVerifier` subclass with a `name`; `create`/`from_config` check its optional dependencies first, so a
deployment naming `local` without the `face` extra fails at start-up with the pip command that fixes it.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from identity.errors import ConfigurationError
from identity.interface import FaceVerifier

__all__ = ["ENTRY_POINT_GROUP", "available", "create", "from_config", "get", "register", "unregister"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "identity.face_adapters"
CONFIG_KEY = "FACE_PROVIDER"
ADAPTER_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")

BUILTIN: dict[str, str] = {
    "sandbox": "identity.sandbox:SandboxFaceAdapter",
    "wechat": "identity.wechat:WeChatFaceAdapter",
    "local": "identity.local:LocalFaceAdapter",
}

_lock = threading.Lock()
_registered: dict[str, type[FaceVerifier]] = {}
_discovered: dict[str, str] | None = None  # entry-point name → "module:attr", read once per process


def register(cls: type[FaceVerifier]) -> type[FaceVerifier]:
    """Register an adapter class under its `name` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, FaceVerifier)):
        raise TypeError("a face adapter must be a FaceVerifier subclass")
    name = getattr(cls, "name", None)
    if not (isinstance(name, str) and ADAPTER_NAME.fullmatch(name)):
        raise ValueError(f"face adapter {cls.__qualname__} needs a name of [a-z][a-z0-9_]{{0,31}}")
    with _lock:
        existing = _registered.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"another face adapter is already registered as {name!r}")
        _registered[name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget an adapter registered with `register` (tests)."""
    with _lock:
        _registered.pop(name, None)


def _entry_points() -> dict[str, str]:
    """Third-party adapters declared in the entry-point group, by name (built-in names excluded)."""
    global _discovered
    with _lock:
        if _discovered is None:
            found: dict[str, str] = {}
            for point in entry_points(group=ENTRY_POINT_GROUP):
                if point.name in BUILTIN:
                    if point.value != BUILTIN[point.name]:
                        # A package must not take over a built-in name: the deployment would silently
                        # verify faces with code nobody reviewed under a trusted name.
                        log.error("entry point %r=%s ignored: the name is a built-in face adapter",
                                  point.name, point.value)
                    continue
                if found.get(point.name, point.value) != point.value:
                    log.error("two packages declare face adapter %r; neither is used", point.name)
                    found[point.name] = ""
                    continue
                found[point.name] = point.value
            _discovered = found
        return dict(_discovered)


def refresh_entry_points() -> None:
    """Read the entry-point group again on the next lookup (after installing a package at run time)."""
    global _discovered
    with _lock:
        _discovered = None


def available() -> list[str]:
    """Every adapter name that can be selected (without importing any adapter)."""
    with _lock:
        registered = set(_registered)
    return sorted(registered | set(BUILTIN) | {n for n, v in _entry_points().items() if v})


def _load(name: str, target: str) -> type[FaceVerifier]:
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"face adapter {name!r} ({target}) could not be loaded: {type(exc).__name__}: {exc}",
            reason="adapter_not_loadable",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, FaceVerifier)) or getattr(cls, "name", None) != name:
        raise ConfigurationError(
            f"face adapter {name!r} ({target}) is not a FaceVerifier named {name!r}", reason="adapter_invalid"
        )
    return register(cls)


def get(name: str) -> type[FaceVerifier]:
    """The adapter class configured as `name`; ConfigurationError if there is none."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError("no face adapter configured (FACE_PROVIDER is empty)", reason="unknown_adapter")
    with _lock:
        cls = _registered.get(name)
    if cls is not None:
        return cls
    if name in BUILTIN:
        return _load(name, BUILTIN[name])
    target = _entry_points().get(name)
    if target:
        return _load(name, target)
    raise ConfigurationError(
        f"unknown face adapter {name!r}; available: {', '.join(available())}", reason="unknown_adapter"
    )


def create(name: str, **settings: Any) -> FaceVerifier:
    """An instance of adapter `name` built from keyword settings, after checking its optional dependencies."""
    cls = get(name)
    cls.check_dependencies()
    try:
        return cls(**settings)
    except TypeError as exc:
        raise ConfigurationError(f"bad settings for face adapter {name!r}: {exc}", reason="bad_settings") from exc


def from_config(config: Mapping[str, Any]) -> FaceVerifier:
    """The adapter named by `config["FACE_PROVIDER"]`, built by its `from_config` from the same mapping."""
    cls = get(str(config.get(CONFIG_KEY) or ""))
    cls.check_dependencies()
    return cls.from_config(config)
