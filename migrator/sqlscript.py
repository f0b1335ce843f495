"""The exact SQL of a downgrade plan as a psql script that is safe to run by hand.

The script sends what the runner sends, in the order it sends it: per transactional step
``BEGIN``, the statements, the goose version-row ``DELETE`` and ``COMMIT``; per NO TRANSACTION
step the statements and the ``DELETE`` with no transaction around them. Around that it does what
the tool does around its run, so a person with ``psql -f`` gets the same guarantees:

- psql stops at the first error (``ON_ERROR_STOP``), with ``AUTOCOMMIT`` on, so a failing
  transactional step leaves nothing behind and nothing after it runs; ``psql
  --single-transaction`` (or an open ``BEGIN``) is refused before anything runs;
- the session settings of :func:`migrator.database.connect` and the runner's per-statement
  ``lock_timeout`` / ``statement_timeout``;
- goose's migration lock, both ids, tried as :func:`migrator.lock.goose_lock` tries them and
  released at the end (psql exiting on an error ends the session, which releases them too);
- before each step goose's re-read of the version table: a database that is not at the step's
  version (another state, or the script already ran) stops the script there.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrator.database import APPLICATION_NAME, CLIENT_CHECK_INTERVAL_MS
from migrator.lock import GOOSE_LOCK_IDS
from migrator.plan import Plan, Step
from migrator.sqlparser import ends_with_semicolon
from migrator.versions import VERSION_TABLE

__all__ = ["ScriptSettings", "sql_script", "version_row_delete"]


@dataclass(frozen=True)
class ScriptSettings:
    """The run options the script bakes in (defaults: the tool's, see ``run_plan``)."""

    lock_wait: float = 300.0
    """``--lock-timeout``: seconds to keep trying goose's migration lock."""
    ddl_lock_timeout: float = 5.0
    """``--ddl-lock-timeout``: PostgreSQL ``lock_timeout`` per statement (0: wait forever)."""
    statement_timeout: float = 0.0
    """``--statement-timeout``: PostgreSQL ``statement_timeout`` per statement (0: none)."""
    lock_poll: float = 5.0
    """Seconds between tries of the lock, as ``goose_lock``'s default poll interval."""


def version_row_delete(version: int) -> str:
    """The statement goose runs after a step's down SQL."""
    return f"DELETE FROM {VERSION_TABLE} WHERE version_id = {int(version)};"


def _milliseconds(seconds: float) -> int:
    # As the runner rounds: 0 stays "none", anything above never rounds down to 0.
    return 0 if seconds <= 0 else max(1, round(seconds * 1000))


def _terminated(statement: str) -> str:
    """The statement with a ``;`` psql will see, even after a trailing ``--`` comment."""
    last_line = statement.rstrip().rsplit("\n", 1)[-1]
    # goose ended the statement on this line because its last word before any ``--`` word
    # ends with ``;``; psql then sees that ``;`` too, unless a block comment is involved.
    if ends_with_semicolon(last_line) and "/*" not in last_line:
        return statement.rstrip()
    return statement.rstrip() + "\n;"


def _comment(text: str) -> str:
    return "\n".join(f"-- {line}".rstrip() for line in text.splitlines() or [""])


def _ids_array() -> str:
    return "ARRAY[" + ", ".join(str(int(i)) for i in GOOSE_LOCK_IDS) + "]::bigint[]"


def _prelude(settings: ScriptSettings) -> str:
    wait = max(settings.lock_wait, 0.0)
    poll = max(settings.lock_poll, 0.01)
    return "\n".join(
        [
            _comment("psql: stop at the first error; outside BEGIN/COMMIT each statement commits"),
            "\\set ON_ERROR_STOP on",
            "\\set AUTOCOMMIT on",
            "\\set ON_ERROR_ROLLBACK off",
            _comment(
                "refuses to run inside a transaction block (psql --single-transaction, an open\n"
                "BEGIN): DISCARD ALL cannot run there. It also starts the session clean."
            ),
            "DISCARD ALL;",
            _comment("the session settings hatchet-schema uses"),
            f"SET application_name = '{APPLICATION_NAME}';",
            "SET statement_timeout = 0;",
            "SET idle_in_transaction_session_timeout = 0;",
            "DO $$",
            "BEGIN",
            "  -- PostgreSQL 14 and later have these two",
            "  IF current_setting('server_version_num')::int >= 140000 THEN",
            "    PERFORM set_config('idle_session_timeout', '0', false);",
            "    PERFORM set_config('client_connection_check_interval', "
            f"'{int(CLIENT_CHECK_INTERVAL_MS)}', false);",
            "  END IF;",
            "END",
            "$$;",
            _comment(
                f"goose's migration lock, both ids (every Hatchet version's hatchet-migrate),\n"
                f"tried every {poll:g} s for up to {wait:g} s (--lock-timeout); held "
                "to the end of the script"
            ),
            "DO $$",
            "DECLARE",
            f"  ids constant bigint[] := {_ids_array()};",
            f"  deadline constant timestamptz := clock_timestamp() + interval '{wait:g} seconds';",
            "  held bigint[] := '{}';",
            "  lock_id bigint;",
            "  holders text;",
            "BEGIN",
            "  LOOP",
            "    FOREACH lock_id IN ARRAY ids LOOP",
            "      IF NOT (lock_id = ANY (held)) AND pg_try_advisory_lock(lock_id) THEN",
            "        held := held || lock_id;",
            "      END IF;",
            "    END LOOP;",
            "    EXIT WHEN cardinality(held) = cardinality(ids);",
            "    SELECT string_agg(format('pid %s (%s)', h.pid,",
            "                             coalesce(nullif(a.application_name, ''), '?')),",
            "                      ', ' ORDER BY h.pid)",
            "      INTO holders",
            "      FROM (SELECT DISTINCT l.pid FROM pg_catalog.pg_locks l",
            "             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1",
            "               AND l.database = (SELECT oid FROM pg_catalog.pg_database",
            "                                  WHERE datname = current_database())",
            "               AND ((l.classid::bigint << 32) | l.objid::bigint) = ANY (ids)",
            "               AND l.pid <> pg_backend_pid()) h",
            "      LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = h.pid;",
            "    IF clock_timestamp() >= deadline THEN",
            "      PERFORM pg_advisory_unlock(t) FROM unnest(held) AS t;",
            "      RAISE EXCEPTION 'hatchet-schema: another migrator holds goose''s migration "
            "lock (%); nothing was changed', coalesce(holders, 'holder not visible')",
            "        USING HINT = 'let it finish or stop it (hatchet-migrate, a hatchet-lite "
            "start, another downgrade), then run this script again';",
            "    END IF;",
            "    RAISE NOTICE 'waiting for goose''s migration lock, held by %', "
            "coalesce(holders, '?');",
            f"    PERFORM pg_sleep(least({poll:g}, "
            "extract(epoch FROM deadline - clock_timestamp())));",
            "  END LOOP;",
            "END",
            "$$;",
            _expect_function(),
            _comment(
                "each statement of the steps: --ddl-lock-timeout, --statement-timeout (a\n"
                "statement that waits longer for a table lock fails and stops the script; the\n"
                "tool would retry it)"
            ),
            f"SET lock_timeout = {_milliseconds(settings.ddl_lock_timeout)};",
            f"SET statement_timeout = {_milliseconds(settings.statement_timeout)};",
        ]
    )


_EXPECT = "pg_temp.hatchet_schema_expect"


def _expect_function() -> str:
    """goose's re-read before each step, as a function of this session only (``pg_temp``, gone
    when the session ends): one line per step instead of a block."""
    return "\n".join(
        [
            _comment(
                "before each step, goose's re-read of the version table: the step's version must\n"
                "be the current one (a renamed row below the target: still applied), else the\n"
                "script stops there (a function of this session only, dropped at the end)"
            ),
            f"CREATE FUNCTION {_EXPECT}(step text, expected bigint, below_target boolean)",
            "RETURNS void LANGUAGE plpgsql AS $$",
            "DECLARE",
            "  current_version bigint;",
            "BEGIN",
            "  IF below_target THEN",
            f"    IF (SELECT g.is_applied FROM {VERSION_TABLE} g WHERE g.version_id = expected",
            "        ORDER BY g.id DESC LIMIT 1) IS NOT TRUE THEN",
            "      RAISE EXCEPTION 'hatchet-schema: stopped before %: version % is no longer "
            "applied; this script was made for another state of the database (or already ran): "
            "make a new one', step, expected;",
            "    END IF;",
            "    RETURN;",
            "  END IF;",
            "  -- goose's current version: the newest applied row that no newer row undoes",
            "  current_version := coalesce((",
            f"    SELECT g.version_id FROM {VERSION_TABLE} g",
            f"     WHERE g.is_applied AND NOT EXISTS (SELECT 1 FROM {VERSION_TABLE} n",
            "       WHERE n.version_id = g.version_id AND NOT n.is_applied AND n.id > g.id)",
            "     ORDER BY g.id DESC LIMIT 1), 0);",
            "  IF current_version <> expected THEN",
            "    RAISE EXCEPTION 'hatchet-schema: stopped before %: the database is at version %, "
            "not %; this script was made for another state of the database (or already ran): "
            "make a new one', step, current_version, expected;",
            "  END IF;",
            "END",
            "$$;",
        ]
    )


def _guard(step: Step, title: str) -> str:
    below = "true" if step.below_target else "false"
    call = f"{_EXPECT}('{title}', {int(step.version)}, {below})"
    return f"DO $$ BEGIN PERFORM {call}; END $$;"


def _epilogue() -> str:
    return "\n".join(
        [
            _comment("done: release goose's migration lock"),
            f"DROP FUNCTION {_EXPECT}(text, bigint, boolean);",
            "DO $$",
            "BEGIN",
            f"  PERFORM pg_advisory_unlock(t) FROM unnest({_ids_array()}) AS t;",
            "END",
            "$$;",
        ]
    )


def sql_script(plan: Plan, settings: ScriptSettings | None = None) -> str:
    """The exact SQL of ``plan`` as a script for ``psql -X -f FILE`` (see the module docstring);
    ``settings``: the run options to bake in (default: the tool's defaults)."""
    settings = settings or ScriptSettings()
    out = [
        _comment(
            f"hatchet-schema downgrade from {plan.from_version} to {plan.to_version}"
            + (f"\nsource: {plan.source}" if plan.source else "")
            + "\nrun with: psql -X -d DATABASE_URL -f THIS_FILE (never --single-transaction)\n"
            "It stops at the first error, holds goose's migration lock throughout, and checks\n"
            "the database's goose version before each step."
        )
    ]
    if plan.blocked:
        out.append(
            _comment(
                f"THIS PLAN IS BLOCKED by {len(plan.blocked_steps)} step(s); "
                "hatchet-schema will not run it"
            )
        )
    stopped_at: Step | None = None
    total = len(plan.steps)
    steps: list[str] = []
    for index, step in enumerate(plan.steps, start=1):
        where = f"step {index}/{total}"
        title = (
            f"{where}: version {step.version}, file {step.file or '(none)'}, "
            f"source {step.source or plan.source or '(unknown)'}"
        )
        if stopped_at is not None:
            steps.append(
                _comment(f"{title}\nnot reached: step for version {stopped_at.version} is blocked")
            )
            continue
        if step.blocked:
            stopped_at = step
            steps.append(
                _comment(f"{title}\nBLOCKED, cannot run: {step.reason or 'no reason given'}")
            )
            continue
        mode = "transaction" if step.transaction else "NO TRANSACTION: each statement on its own"
        notes = [f"runs: {step.action}"]
        if step.patch_reason:
            notes.append(f"patched: {step.patch_reason}")
        notes += [f"data loss: {what}" for what in step.data_loss]
        lines = [_comment(f"{title}\n{mode}\n" + "\n".join(notes))]
        guard = _guard(step, f"{where} (version {step.version})")
        if step.transaction:
            lines += ["BEGIN;", guard]  # read and revert in one transaction, as the runner does
        else:
            lines.append(guard)
        for statement in step.statements:
            if statement.strip():
                lines.append(_terminated(statement))
            else:
                lines.append("-- (empty statement: goose sends an empty query here)")
        lines.append(version_row_delete(step.version))
        if step.transaction:
            lines.append("COMMIT;")
        steps.append("\n".join(lines))
    runs = _first_blocked(plan) > 0  # some step runs: lock and settings around it
    if runs:
        out.append(_prelude(settings))
    out += steps
    if runs:
        out.append(_epilogue())
    return "\n\n".join(out) + "\n"


def _first_blocked(plan: Plan) -> int:
    return next((i for i, s in enumerate(plan.steps) if s.blocked), len(plan.steps))
