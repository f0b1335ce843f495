"""Pinning Hatchet image tags in compose files: golden files, byte fidelity, backups, advice.

Golden files live in ``fixtures/compose``: ``X.input.yml`` pinned to ``v0.60.0`` must equal
``X.golden.yml`` byte for byte, with the warnings of ``X.warnings.txt`` (one per line).
Regenerate them after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_images.py``
and review the diff.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli import exit_code_of
from resolver.errors import BadInputError
from resolver.images import (
    IMAGE_NAMES,
    diff,
    next_steps,
    pin_compose,
    rewrite_compose_file,
)

COMPOSE = Path(__file__).resolve().parent.parent / "fixtures" / "compose"
RELEASE = "v0.60.0"
INPUTS = sorted(COMPOSE.glob("*.input.yml"))


def _stem(path: Path) -> str:
    return path.name.removesuffix(".input.yml")


def test_fixture_set_is_complete() -> None:
    assert {_stem(p) for p in INPUTS} >= {
        "hatchet-stack",
        "env-tags",
        "hatchet-lite-crlf",
        "no-hatchet",
    }


@pytest.mark.parametrize("source", INPUTS, ids=_stem)
def test_golden(source: Path) -> None:
    golden = COMPOSE / f"{_stem(source)}.golden.yml"
    golden_warnings = COMPOSE / f"{_stem(source)}.warnings.txt"
    result = pin_compose(source.read_bytes().decode(), RELEASE)
    got_warnings = "".join(f"{w}\n" for w in result.warnings)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_bytes(result.text.encode())
        golden_warnings.write_text(got_warnings)
    assert result.text.encode() == golden.read_bytes()
    assert got_warnings == golden_warnings.read_text()


@pytest.mark.parametrize("source", INPUTS, ids=_stem)
def test_only_image_references_change(source: Path) -> None:
    original = source.read_bytes().decode()
    result = pin_compose(original, RELEASE)
    old_lines, new_lines = original.split("\n"), result.text.split("\n")
    assert len(old_lines) == len(new_lines)
    changed = {n for n, (a, b) in enumerate(zip(old_lines, new_lines, strict=True), 1) if a != b}
    assert changed == {c.line for c in result.changes}
    for change in result.changes:
        old_line, new_line = old_lines[change.line - 1], new_lines[change.line - 1]
        assert old_line.replace(change.old, change.new, 1) == new_line
        assert change.new.endswith(RELEASE) or change.new.endswith(f"{RELEASE}}}")


def test_stack_pins_every_form_it_can() -> None:
    text = (COMPOSE / "hatchet-stack.input.yml").read_text()
    result = pin_compose(text, RELEASE)
    assert {c.image for c in result.changes} == {
        "hatchet-engine",
        "hatchet-migrate",
        "hatchet-admin",
        "hatchet-api",
        "hatchet-dashboard",
        "hatchet-frontend-dev",
    }
    # The anchor carries the tag; the alias that uses it is untouched.
    assert "&engine-image ghcr.io/hatchet-dev/hatchet/hatchet-engine:v0.60.0 # engine tag" in (
        result.text
    )
    assert "    image: *engine-image\n" in result.text
    # Quoting and trailing whitespace survive; a commented-out reference and a URL do not move.
    assert "image: 'ghcr.io/hatchet-dev/hatchet/hatchet-admin:v0.60.0'\n" in result.text
    assert 'image: "ghcr.io/hatchet-dev/hatchet/hatchet-api:v0.60.0"   \n' in result.text
    assert "# image: ghcr.io/hatchet-dev/hatchet/hatchet-api:v0.50.0   (the last" in result.text
    assert "source: https://ghcr.io/hatchet-dev/hatchet/hatchet-admin\n" in result.text
    assert "v0.71.0" not in result.text
    assert "sha256" not in result.text
    assert any("dropped digest" in w for w in result.warnings)
    assert any("'db-migrate' looks like a migration job" in w for w in result.warnings)


def test_crlf_and_trailing_whitespace_are_kept() -> None:
    raw = (COMPOSE / "hatchet-lite-crlf.input.yml").read_bytes()
    result = pin_compose(raw.decode(), RELEASE)
    out = result.text.encode()
    assert out.count(b"\r\n") == raw.count(b"\r\n") == raw.count(b"\n")
    assert b"hatchet-lite:v0.60.0  \r\n" in out
    assert b'"8888:8888"\t\r\n' in out
    assert b"hatchet-engine-dev:v0.60.0 # follows main\r\n" in out


@pytest.mark.parametrize(
    ("tag", "pinned"),
    [
        ("", ":v0.60.0"),
        (":latest", ":v0.60.0"),
        (":v0.104.7", ":v0.60.0"),
        (":${HATCHET_VERSION:-v0.104.7}", ":${HATCHET_VERSION:-v0.60.0}"),
        ("@sha256:" + "ab" * 32, ":v0.60.0"),
    ],
)
def test_tag_forms_that_are_pinned(tag: str, pinned: str) -> None:
    text = f"services:\n  e:\n    image: ghcr.io/hatchet-dev/hatchet/hatchet-engine{tag}\n"
    result = pin_compose(text, RELEASE)
    assert result.text.endswith(f"hatchet-engine{pinned}\n")


@pytest.mark.parametrize(
    ("tag", "advice"),
    [
        (":${HATCHET_VERSION}", "set HATCHET_VERSION=v0.60.0"),
        (":$HATCHET_VERSION", "set HATCHET_VERSION=v0.60.0"),
        (":${HATCHET_VERSION:?required}", "set HATCHET_VERSION=v0.60.0"),
        (":${HATCHET_VERSION:-}", "set HATCHET_VERSION=v0.60.0"),
        (":v${V}", "make it resolve to v0.60.0"),
        ("@${DIGEST}", "digest variable ${DIGEST}"),
    ],
)
def test_tag_forms_left_alone_with_a_warning(tag: str, advice: str) -> None:
    text = f"services:\n  e:\n    image: ghcr.io/hatchet-dev/hatchet/hatchet-migrate{tag}\n"
    result = pin_compose(text, RELEASE)
    assert result.text == text
    assert result.changes == []
    assert any(advice in w and "line 3" in w for w in result.warnings), result.warnings


def test_default_pin_warns_that_the_variable_still_wins() -> None:
    text = "image: ghcr.io/hatchet-dev/hatchet/hatchet-engine:${TAG:-v0.71.0}\n"
    (warning,) = pin_compose(text, RELEASE).warnings
    assert "TAG is set" in warning and "set TAG=v0.60.0 or unset it" in warning


def test_already_pinned_is_no_change() -> None:
    text = "image: ghcr.io/hatchet-dev/hatchet/hatchet-engine:v0.60.0"
    result = pin_compose(text, RELEASE)
    assert result.text == text and result.changes == [] and not result.changed


def test_longer_names_and_other_images_are_not_confused() -> None:
    text = (
        "a: ghcr.io/hatchet-dev/hatchet/hatchet-engine-dev:v1\n"
        "b: ghcr.io/hatchet-dev/hatchet/hatchet-engineer:v1\n"
        "c: ghcr.io/hatchet-dev/hatchet-lite:v1\n"
        "d: ghcr.io/hatchet-dev/hatchet/hatchet-api/extra:v1\n"
        "e: https://ghcr.io/hatchet-dev/hatchet/hatchet-api:v1\n"
    )
    result = pin_compose(text, RELEASE)
    assert [c.image for c in result.changes] == ["hatchet-engine-dev"]
    assert result.text.splitlines()[1:] == text.splitlines()[1:]
    assert any("hatchet-engineer is not a Hatchet release image" in w for w in result.warnings)


def test_hash_inside_quotes_is_not_a_comment() -> None:
    text = (
        "cmd: \"echo '#' ghcr.io/hatchet-dev/hatchet/hatchet-admin:v1\""
        " # ghcr.io/hatchet-dev/hatchet/hatchet-api:v1\n"
    )
    result = pin_compose(text, RELEASE)
    assert result.text == (
        "cmd: \"echo '#' ghcr.io/hatchet-dev/hatchet/hatchet-admin:v0.60.0\""
        " # ghcr.io/hatchet-dev/hatchet/hatchet-api:v1\n"
    )


def test_bad_release_is_bad_input() -> None:
    with pytest.raises(BadInputError) as err:
        pin_compose("image: ghcr.io/hatchet-dev/hatchet/hatchet-api:v1\n", "v0.60.0 --rm")
    assert exit_code_of(err.value) == 2


# Text without any Hatchet image name is returned unchanged, whatever it holds.
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_text_without_hatchet_images_is_untouched(text: str) -> None:
    if "hatchet-dev/hatchet/" in text:
        return
    result = pin_compose(text, RELEASE)
    assert result.text == text
    assert result.changes == []


def test_diff_is_unified_and_empty_when_equal() -> None:
    old = "a\nimage: x:1\nc"
    new = "a\nimage: x:2\nc"
    out = diff(old, new, "docker-compose.yml")
    assert out.startswith("--- a/docker-compose.yml\n+++ b/docker-compose.yml\n")
    assert "-image: x:1\n+image: x:2\n" in out
    assert diff(old, old, "f") == ""
    assert "\\ No newline at end of file" in diff("a", "b", "f")


def _write(path: Path, data: bytes, mode: int = 0o640) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def test_rewrite_keeps_a_backup_and_only_changes_tags(tmp_path: Path) -> None:
    raw = (COMPOSE / "hatchet-stack.input.yml").read_bytes()
    compose = tmp_path / "docker-compose.yml"
    _write(compose, raw)
    result = rewrite_compose_file(compose, RELEASE, dry_run=False)
    assert (tmp_path / "docker-compose.yml.bak").read_bytes() == raw
    assert result.backup == tmp_path / "docker-compose.yml.bak"
    assert compose.read_bytes() == (COMPOSE / "hatchet-stack.golden.yml").read_bytes()
    assert stat.S_IMODE(compose.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "docker-compose.yml",
        "docker-compose.yml.bak",
    ]


def test_rewrite_keeps_crlf_bytes(tmp_path: Path) -> None:
    compose = tmp_path / "c.yml"
    _write(compose, (COMPOSE / "hatchet-lite-crlf.input.yml").read_bytes())
    rewrite_compose_file(compose, RELEASE, dry_run=False)
    assert compose.read_bytes() == (COMPOSE / "hatchet-lite-crlf.golden.yml").read_bytes()


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    raw = (COMPOSE / "hatchet-stack.input.yml").read_bytes()
    compose = tmp_path / "docker-compose.yml"
    _write(compose, raw)
    result = rewrite_compose_file(compose, RELEASE, dry_run=True)
    assert compose.read_bytes() == raw
    assert [p.name for p in tmp_path.iterdir()] == ["docker-compose.yml"]
    assert result.backup is None
    shown = diff(result.original, result.text, "docker-compose.yml")
    assert "+    image: ghcr.io/hatchet-dev/hatchet/hatchet-migrate:v0.60.0\n" in shown


def test_unchanged_file_gets_no_backup(tmp_path: Path) -> None:
    compose = tmp_path / "c.yml"
    _write(compose, b"image: ghcr.io/hatchet-dev/hatchet/hatchet-api:v0.60.0\n")
    result = rewrite_compose_file(compose, RELEASE, dry_run=False)
    assert result.backup is None
    assert [p.name for p in tmp_path.iterdir()] == ["c.yml"]


def test_an_older_different_backup_is_not_clobbered(tmp_path: Path) -> None:
    compose = tmp_path / "c.yml"
    _write(compose, b"image: ghcr.io/hatchet-dev/hatchet/hatchet-api:v0.71.0\n")
    (tmp_path / "c.yml.bak").write_bytes(b"someone else's backup\n")
    result = rewrite_compose_file(compose, RELEASE, dry_run=False)
    assert (tmp_path / "c.yml.bak").read_bytes() == b"someone else's backup\n"
    assert result.backup == tmp_path / "c.yml.bak.1"
    assert result.backup.read_bytes() == b"image: ghcr.io/hatchet-dev/hatchet/hatchet-api:v0.71.0\n"


def test_non_utf8_bytes_survive(tmp_path: Path) -> None:
    compose = tmp_path / "c.yml"
    _write(compose, b"# caf\xe9\nimage: ghcr.io/hatchet-dev/hatchet/hatchet-api:v0.71.0\n")
    rewrite_compose_file(compose, RELEASE, dry_run=False)
    assert compose.read_bytes() == (
        b"# caf\xe9\nimage: ghcr.io/hatchet-dev/hatchet/hatchet-api:v0.60.0\n"
    )


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as err:
        rewrite_compose_file(tmp_path / "nope.yml", RELEASE, dry_run=False)
    assert exit_code_of(err.value) == 2
    assert "nope.yml" in str(err.value)


def test_next_steps_lists_images_migration_jobs_and_helm() -> None:
    text = "\n".join(next_steps("v0.60.0"))
    for name in IMAGE_NAMES:
        assert f"ghcr.io/hatchet-dev/hatchet/{name}:v0.60.0" in text
    assert "migration" in text and "hatchet-lite" in text and "pre-upgrade" in text
    assert "--set sharedConfig.image.tag=v0.60.0" in text
