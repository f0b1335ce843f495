"""Errors the resolver raises: each carries one user-facing message and its category.

The categories are the command-line contract's kinds of failure (the same words as
``migrator.errors``, which this package may not import); the exit code of each is defined
once, where errors leave the tool (``cli.exit_code_of``).
"""

from __future__ import annotations

from typing import Literal

Category = Literal["failed", "bad_input", "blocked"]
"""failed: GitHub or the cache failed; bad_input: a tag, URL or option; blocked: the history
cannot serve the request (no release holds what is needed)."""


class ResolverError(Exception):
    """An expected failure: ``str(err)`` is the message for the user (never a token)."""

    category: Category = "failed"

    def __init__(self, message: str, category: Category | None = None) -> None:
        super().__init__(message)
        self.message = message
        if category is not None:
            self.category = category


class BadInputError(ResolverError):
    """Unknown or pre-release tag, malformed URL, a token over plain http, and the like."""

    category: Category = "bad_input"


class NetworkError(ResolverError):
    """GitHub could not be reached or answered with an error (5xx after retries, 401, 403...)."""


class RateLimitedError(NetworkError):
    """The rate limit is spent and resets too far in the future to wait for."""


class CacheMissError(ResolverError):
    """``--offline`` was given and the cache does not hold what is needed."""


class HTTPStatusError(NetworkError):
    """GitHub answered a 4xx that is not a rate limit; ``status`` tells which."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(HTTPStatusError):
    """GitHub answered 404; callers turn it into a message about what was missing."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 404)
