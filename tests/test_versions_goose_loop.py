"""goose's current-version loop (newest row first, early exit) agrees with the newest-row-per-
version definition on any table, including repeated and not-applied rows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from migrator.versions import VersionRow, current_version, current_version_newest_first


def newest_row_definition(rows: list[VersionRow]) -> int:
    """Each version's newest row (highest id); the newest applied one among them is current."""
    newest: dict[int, VersionRow] = {}
    for row in rows:
        if row.version_id not in newest or row.id > newest[row.version_id].id:
            newest[row.version_id] = row
    applied = [r for r in newest.values() if r.is_applied]
    return max(applied, key=lambda r: r.id).version_id if applied else 0


tables = st.lists(st.tuples(st.integers(0, 6), st.booleans()), max_size=30).map(
    lambda pairs: [
        VersionRow(id=i, version_id=v, is_applied=a, tstamp=None)
        for i, (v, a) in enumerate(pairs, start=1)
    ]
)


@given(tables)
def test_goose_loop_matches_the_newest_row_definition(rows: list[VersionRow]) -> None:
    expected = newest_row_definition(rows)
    assert current_version(rows) == expected
    newest_first = sorted(rows, key=lambda r: r.id, reverse=True)
    assert current_version_newest_first((r.version_id, r.is_applied) for r in newest_first) == (
        expected
    )
