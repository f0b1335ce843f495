"""Errors the resolver raises: each carries one user-facing message and a CLI exit code."""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BLOCKED = 3


class ResolverError(Exception):
    """An expected failure: ``str(err)`` is the message for the user (never a token)."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class BadInputError(ResolverError):
    """Unknown or pre-release tag, malformed URL, a token over plain http, and the like."""

    exit_code = EXIT_BAD_INPUT


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
