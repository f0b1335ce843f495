"""pglast's reading of a statement, parsed once per process.

Planning a run reads every statement with pglast several times (warnings, data checks, enum
rebuilds, what an up leaves behind), and a run plans twice: for the prompt, and again with the
lock held. pglast builds its tree in Python, which makes parsing most of a plan's cost, so the
trees are kept by statement text. They are shared: callers read them and never change them
(copy a node first, as :mod:`migrator.datacheck` does before rewriting one).
"""

from __future__ import annotations

import functools
from typing import Any

import pglast


@functools.lru_cache(maxsize=8192)
def parse_statements(sql: str) -> tuple[Any, ...] | None:
    """The top-level statement nodes of ``sql``; None when pglast cannot read it."""
    try:
        return tuple(raw.stmt for raw in pglast.parse_sql(sql))
    except Exception:  # SQL pglast cannot read is the caller's to report, never fatal
        return None
