"""Typed exceptions of the shared-data library; the app maps them to its error shape (e.g. UnsafeUrl → 422).

Bureau faults during a call are not exceptions: `ConnectorClient.fetch` reports them in its `FetchResult`.
These exceptions are for bad input from our own side: an invalid connector specification, an unsafe URL, a
value that does not match its element's type, an unknown connector or element name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared_data.elements import UnknownElement

__all__ = [
    "DuplicateConnector",
    "InvalidCallContext",
    "InvalidPath",
    "InvalidSpec",
    "PathNotFound",
    "SharedDataError",
    "SignatureInvalid",
    "UnknownConnector",
    "UnknownElement",
    "UnsafeUrl",
    "ValueTypeError",
]


class SharedDataError(Exception):
    """Base class of this library's errors."""


class InvalidSpec(SharedDataError, ValueError):
    """A connector specification failed validation; `errors` maps each field to its problems."""

    def __init__(self, errors: Mapping[str, Sequence[str]]):
        self.errors = {name: list(problems) for name, problems in errors.items()}
        super().__init__(
            "; ".join(f"{name}: {', '.join(problems)}" for name, problems in self.errors.items())
        )


class InvalidPath(SharedDataError, ValueError):
    """A source path is not well-formed (see `connectors.parse_path` for the syntax)."""


class PathNotFound(SharedDataError, LookupError):
    """A well-formed source path leads nowhere in a given document."""


class ValueTypeError(SharedDataError, ValueError):
    """A value does not match (and cannot be read as) its element's declared type.

    The message names types, never the value itself: values are personal data and messages reach logs.
    """

    def __init__(self, expected: str, reason: str):
        self.expected = expected
        self.reason = reason
        super().__init__(f"expected {expected}: {reason}")


class UnsafeUrl(SharedDataError, ValueError):
    """A URL the platform must not call; `reason` is a stable snake_case word for the API and the logs."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class UnknownConnector(SharedDataError, KeyError):
    """No connector with that id is registered."""


class DuplicateConnector(SharedDataError, ValueError):
    """A connector with that id is already registered."""


class InvalidCallContext(SharedDataError, ValueError):
    """A call context (purpose, application, acting user, request id) that cannot be sent as headers."""


class SignatureInvalid(SharedDataError):
    """A signed request failed verification; `reason` is a stable snake_case word."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)
