"""goose's file-naming rule, as the resolver and the migrator each apply it, held to each other.

The rule lives twice because the packages may not import each other: ``resolver.models``
(``migration_name``, for GitHub listings: what ``resolve`` counts) and ``migrator.sources``
(``collect``, for the files a downgrade runs). If they disagreed, ``resolve`` could name a target
version that the migrator does not see, or the reverse. Below: every form of file name that
Hatchet's history has used (synthetic names of the same shapes), goose's edge cases, and then
arbitrary names.
"""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from migrator.errors import MigrationFileError
from migrator.sources import collect
from resolver.models import migration_name

Refused = Literal["refused"]
REFUSED: Refused = "refused"
"""goose stops with an error (a ``.sql`` without a valid version); listings leave it out."""

Answer = tuple[int, str] | Refused | None


def migrator_answer(name: str) -> Answer:
    try:
        found = collect({name: b""}, origin="test")
    except MigrationFileError:
        return REFUSED
    return next(((f.version, f.kind) for f in found.values()), None)


def resolver_answer(name: str) -> tuple[int, str] | None:
    return migration_name(name)


# The shapes of every name in cmd/hatchet-migrate/migrate/migrations over Hatchet's history
# (v0.55.0 to v0.104.7 and the branches between), with made-up versions and words.
HATCHET_FORMS: list[tuple[str, Answer]] = [
    ("20250311000000_v1_0_0.sql", (20250311000000, "sql")),
    ("20250312000000_v1_0_42.sql", (20250312000000, "sql")),
    ("20250313000000_v1_0_107.sql", (20250313000000, "sql")),
    ("20250314000000_v1_12_3.sql", (20250314000000, "sql")),
    ("20250315000000_v1_0_118.go", (20250315000000, "go")),
    ("20250316000000_v1_0_79_c_backfill_slots.go", (20250316000000, "go")),
    ("20250317000000_v1_0_79_a_multi_slot_schema.sql", (20250317000000, "sql")),
    ("20250318000000_batching_consolidated_v1_0_111.sql", (20250318000000, "sql")),
    ("20250319000000_1_0_4.sql", (20250319000000, "sql")),  # no "v"
    ("20250320000000_v_1_10_4.sql", (20250320000000, "sql")),
    ("20250321000000_v1_batched_queue_items.sql", (20250321000000, "sql")),
    ("20250322000000_add_task_batch_metadata.sql", (20250322000000, "sql")),
    ("20250323000000_init.sql", (20250323000000, "sql")),
    ("20250324000000_empty_migration.go", (20250324000000, "go")),
    ("20250325000000_v1_0_15..go", (20250325000000, "go")),  # a doubled dot
    ("20250326000000_batching_v1_0_118.sql.sql", (20250326000000, "sql")),  # a doubled extension
]

# goose's edge cases (``NumericComponent``, the ``*.sql`` / ``*.go`` globs, ``_test.go``).
EDGE_CASES: list[tuple[str, Answer]] = [
    ("00001_leading_zeros.sql", (1, "sql")),
    ("1_x.go", (1, "go")),
    ("+7_signed.sql", (7, "sql")),  # strconv.ParseInt takes a sign
    ("5__double_underscore.sql", (5, "sql")),
    ("6_.sql", (6, "sql")),
    ("9223372036854775807_int64_max.sql", (2**63 - 1, "sql")),
    ("9223372036854775808_past_int64.sql", REFUSED),
    ("0_zero.sql", REFUSED),
    ("-1_negative.sql", REFUSED),
    ("x_1.sql", REFUSED),
    ("20250311000000.sql", REFUSED),  # no "_"
    ("_x.sql", REFUSED),
    (".sql", REFUSED),
    ("\u0662\u0660_arabic_indic_digits.sql", REFUSED),  # not ASCII digits
    ("\uff11_fullwidth_digit.sql", REFUSED),
    (" 1_space.sql", REFUSED),
    ("0_zero.go", None),  # a .go without a valid version is skipped, not an error
    ("embed.go", None),
    ("+_x.go", None),
    ("20250311000000_v1_0_0_test.go", None),
    ("_test.go", None),
    ("20250311000000_v1_0_0.SQL", None),  # the globs are case-sensitive
    ("20250311000000_v1_0_0.sql.bak", None),
    ("20250311000000_v1_0_0.sql~", None),
    ("README.md", None),
    ("sub/20250311000000_v1_0_0.sql", None),  # only the top level of the directory
    ("20250311000000_v1_0_0", None),
]


@pytest.mark.parametrize(
    ("name", "expected"), HATCHET_FORMS + EDGE_CASES, ids=[n for n, _ in HATCHET_FORMS + EDGE_CASES]
)
def test_both_packages_apply_goose_rule(name: str, expected: Answer) -> None:
    assert migrator_answer(name) == expected
    assert resolver_answer(name) == (None if expected == REFUSED else expected)


_PIECES = st.sampled_from(
    [
        "0", "1", "7", "20250311000000", "9223372036854775808", "+", "-", "_", ".", "/", " ",
        "v1_0_", "sql", "go", ".sql", ".go", "_test", "_test.go", "x", "\u0662", "\uff11", "\n",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=3)), max_size=8).map("".join))
@example("20250311000000_v1_0_0.sql")
def test_both_packages_agree_on_any_name(name: str) -> None:
    ours = migrator_answer(name)
    assert resolver_answer(name) == (None if ours == REFUSED else ours)
    if ours == REFUSED:
        assert name.endswith(".sql")  # goose errors only on .sql names
