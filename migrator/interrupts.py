"""SIGINT, SIGTERM and SIGHUP as exceptions a run can clean up after.

By default Python turns only SIGINT into an exception; SIGTERM and SIGHUP end the process at
once, with a transaction open on the server and nothing said about where the database is. While
:func:`signals_raise` is active all three raise :class:`Signalled` (a ``KeyboardInterrupt``, so
psycopg cancels the statement running on the server before it re-raises).

A statement that runs without a transaction cannot be taken back once it started, so inside
:func:`deferred` a signal is only noted: the statement finishes and the signal is raised when
the block ends. A second signal while deferring raises at once (the operator insists; the
statement is cancelled). :func:`held` notes every signal and never raises (for cleanup that
must not be cut short, such as dropping a scratch database).

Handlers someone else installed (an ignoring ``nohup``, a test harness) are left alone, and off
the main thread nothing is installed (Python delivers signals to the main thread only).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = [
    "Signalled",
    "deferred",
    "held",
    "signal_name",
    "signals_raise",
    "signum_of",
]

SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


def signal_name(signum: int) -> str:
    """How a message names the signal."""
    return _NAMES.get(signal.Signals(signum), f"signal {signum}")


class Signalled(KeyboardInterrupt):
    """A signal arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def signum_of(exc: KeyboardInterrupt) -> int:
    """The signal behind a KeyboardInterrupt (a plain one is SIGINT)."""
    return exc.signum if isinstance(exc, Signalled) else int(signal.SIGINT)


@dataclass
class _State:
    depth: int = 0
    defer: int = 0
    hold: int = 0
    arrived: list[int] = field(default_factory=list)


_state = _State()


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _state.hold:
        _state.arrived.append(signum)
        return
    if _state.defer and not _state.arrived:
        _state.arrived.append(signum)
        return
    raise Signalled(signum)


def _ours_to_replace(current: Any) -> bool:
    """The default handlers only: one someone else installed (nohup's SIG_IGN) stays."""
    return current in (signal.SIG_DFL, signal.default_int_handler)


@contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Signalled` inside the block (re-entrant)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    if _state.depth == 0:
        _state.arrived.clear()
    for sig in SIGNALS:
        current = signal.getsignal(sig)
        if _ours_to_replace(current):
            previous[sig] = signal.signal(sig, _handler)
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def deferred() -> Iterator[None]:
    """A signal inside the block is raised when it ends (a second one at once)."""
    _state.defer += 1
    try:
        yield
    finally:
        _state.defer -= 1
    if not _state.defer and not _state.hold and _state.arrived:
        raise Signalled(_state.arrived.pop(0))


@contextmanager
def held() -> Iterator[list[int]]:
    """Every signal inside the block is noted, none raised; yields the list they go to.

    Installs its own handlers for the block (SIGINT too), whatever was there, except ones
    someone else installed to ignore a signal."""
    arrived: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous: dict[int, Any] = {}
    if main:
        for sig in SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, _handler)
    _state.hold += 1
    start = len(_state.arrived)
    try:
        yield arrived
    finally:
        _state.hold -= 1
        arrived.extend(_state.arrived[start:])
        del _state.arrived[start:]
        for sig, handler in previous.items():
            signal.signal(sig, handler)
