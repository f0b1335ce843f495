"""End to end: ``hatchet-schema resolve`` / ``releases`` against the local GitHub emulator serving
the fixture history (fixtures/history/releases.toml). In-process (``invoke_cli``), with fake
sleeps where the client waits; the installed console script runs in a subprocess for tokens
taken from a real process environment (tests/test_cli_smoke.py runs each entry point)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import tool_version
from fixtures.github_emulator import Emulator
from tests.e2e_helpers import files_containing, invoke_cli, no_real_sleeps, ok, refused, run_cli

pytestmark = pytest.mark.e2e

TOKEN = "ghp_e2eSecretTokenValue0123456789abcdef"


@pytest.fixture
def gh() -> Iterator[Emulator]:
    with Emulator(token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_resolve_prints_exactly_the_version(gh: Emulator, cache: Path) -> None:
    result = ok(invoke_cli(["resolve", "v0.60.0"], gh, cache_dir=cache))
    assert result.stdout == "20250611170000\n"
    assert gh.counts.core <= 2


def test_resolve_json_has_the_contract_fields(gh: Emulator, cache: Path) -> None:
    result = ok(invoke_cli(["resolve", "v0.60.0", "--json"], gh, cache_dir=cache))
    repo = gh.repos["hatchet-dev/hatchet"]
    assert json.loads(result.stdout) == {
        "release": "v0.60.0",
        "version": 20250611170000,
        "file": "20250611170000_v1_0_13.sql",
        "commit": repo.resolve_ref("v0.60.0"),
        "migrations": 14,
        "tool_version": tool_version(),
    }


@pytest.mark.parametrize(
    ("tag", "version", "file", "count"),
    [
        ("v0.57.0", 20250430000000, "20250430000000_v1_0_7.go", 8),
        ("v0.57.1", 20250505000000, "20250505000000_v1_0_8a.sql", 9),
        ("v0.58.1", 20250521090000, "20250521090000_v1_0_10.sql", 11),
        ("v0.55.0", 20250325120000, "20250325120000_v1_0_2.sql", 3),
    ],
)
def test_resolve_counts_go_files_and_follows_each_release(
    gh: Emulator, cache: Path, tag: str, version: int, file: str, count: int
) -> None:
    result = ok(invoke_cli(["resolve", tag, "--json"], gh, cache_dir=cache))
    document = json.loads(result.stdout)
    assert (document["version"], document["file"], document["migrations"]) == (
        version,
        file,
        count,
    )


def test_annotated_tag_reports_the_commit_not_the_tag_object(gh: Emulator, cache: Path) -> None:
    repo = gh.repos["hatchet-dev/hatchet"]
    result = ok(invoke_cli(["resolve", "v0.56.0", "--json"], gh, cache_dir=cache))
    document = json.loads(result.stdout)
    assert document["version"] == 20250423110000
    assert document["commit"] == repo.resolve_ref("v0.56.0") != repo.tags["v0.56.0"]


def test_unknown_release_names_the_nearest_stable_ones(gh: Emulator, cache: Path) -> None:
    stderr = refused(invoke_cli(["resolve", "v0.59.5"], gh, cache_dir=cache), 2)
    assert "v0.59.0" in stderr and "v0.60.0" in stderr


def test_release_before_the_directory_existed_is_refused(gh: Emulator, cache: Path) -> None:
    stderr = refused(invoke_cli(["resolve", "v0.54.0"], gh, cache_dir=cache), 2)
    assert "directory" in stderr and "v0.54.0" in stderr


def test_prerelease_needs_allow_prerelease(gh: Emulator, cache: Path) -> None:
    stderr = refused(invoke_cli(["resolve", "v0.58.0-alpha.1"], gh, cache_dir=cache), 2)
    assert "--allow-prerelease" in stderr
    allowed = ok(
        invoke_cli(["resolve", "v0.58.0-alpha.1", "--allow-prerelease"], gh, cache_dir=cache)
    )
    assert allowed.stdout == "20250510000000\n"


def test_releases_lists_stable_newest_first_in_semver_order(gh: Emulator, cache: Path) -> None:
    result = ok(invoke_cli(["releases", "--limit", "5"], gh, cache_dir=cache))
    assert result.stdout.splitlines() == ["v0.60.0", "v0.59.0", "v0.58.1", "v0.58.0", "v0.57.1"]
    everything = ok(invoke_cli(["releases"], gh, cache_dir=cache)).stdout.splitlines()
    assert len(everything) == 53 * 6 + 10  # filler v0.1.0..v0.53.5, then v0.54.0..v0.60.0
    assert not {"v.jun-27-demo.3", "0.19.2", "py/v0.1.0", "v0.60.1-rc.1"} & set(everything)


def test_releases_with_prereleases_and_json(gh: Emulator, cache: Path) -> None:
    result = ok(
        invoke_cli(["releases", "--include-prereleases", "--limit", "3"], gh, cache_dir=cache)
    )
    assert result.stdout.splitlines() == ["v0.60.1-rc.1", "v0.60.0", "v0.60.0-migration.1"]
    as_json = ok(invoke_cli(["releases", "--limit", "2", "--json"], gh, cache_dir=cache))
    document = json.loads(as_json.stdout)
    assert "v0.60.0" in json.dumps(document) and "v0.58.1" not in json.dumps(document)


def test_warm_cache_spends_no_quota(gh: Emulator, cache: Path) -> None:
    ok(invoke_cli(["resolve", "v0.59.0"], gh, cache_dir=cache))
    gh.reset_counts()
    again = ok(invoke_cli(["resolve", "v0.59.0"], gh, cache_dir=cache))
    assert again.stdout == "20250604130000\n"
    assert gh.counts.core == 0, gh.requests


def test_offline_reads_the_cache_and_a_cold_cache_fails_clearly(
    gh: Emulator, cache: Path, tmp_path: Path
) -> None:
    ok(invoke_cli(["resolve", "v0.58.0"], gh, cache_dir=cache))
    gh.reset_counts()
    offline = ok(invoke_cli(["resolve", "v0.58.0", "--offline"], gh, cache_dir=cache))
    assert offline.stdout == "20250521090000\n"
    cold = invoke_cli(["resolve", "v0.58.0", "--offline"], gh, cache_dir=tmp_path / "empty")
    assert cold.returncode != 0, str(cold)
    assert "Traceback" not in cold.stderr and "offline" in cold.stderr.lower()
    assert gh.counts.total == 0, gh.requests


def test_server_errors_are_retried(
    gh: Emulator, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = no_real_sleeps(monkeypatch)
    gh.fail("matching-refs", 502, times=2)
    result = ok(invoke_cli(["resolve", "v0.60.0"], gh, cache_dir=cache))
    assert result.stdout == "20250611170000\n"
    tries = [r for r in gh.requests if "matching-refs" in r.path]
    assert [r.status for r in tries] == [502, 502, 200]
    assert sleeps == [0.5, 1.0]  # a backoff before each retry, doubling


def test_persistent_html_errors_fail_with_one_message(
    gh: Emulator, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = no_real_sleeps(monkeypatch)
    gh.fail("matching-refs", 503, times=10, body="html")
    refused(invoke_cli(["resolve", "v0.60.0"], gh, cache_dir=cache), 1)
    assert sleeps[:2] == [0.5, 1.0]  # retried before giving up


def test_malformed_json_fails_with_one_message(gh: Emulator, cache: Path) -> None:
    gh.fail("matching-refs", 200, times=10, body="malformed")
    refused(invoke_cli(["resolve", "v0.60.0"], gh, cache_dir=cache), 1)


def test_secondary_limit_with_short_retry_after_is_waited_out(
    gh: Emulator, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = no_real_sleeps(monkeypatch)
    gh.secondary_limit("matching-refs", retry_after=1)
    assert ok(invoke_cli(["resolve", "v0.60.0"], gh, cache_dir=cache)).stdout == "20250611170000\n"
    assert sleeps == [2.0]  # retry-after, plus a second of margin


def test_rate_limit_with_far_reset_fails_mentioning_gh_token(
    gh: Emulator, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = no_real_sleeps(monkeypatch)
    gh.exhaust_rate_limit(reset_in=3600)
    stderr = refused(invoke_cli(["resolve", "v0.60.0"], gh, cache_dir=cache), 1)
    assert "GH_TOKEN" in stderr
    assert sleeps == []  # an hour is not waited out


def test_token_is_used_but_never_shown_or_stored(gh: Emulator, cache: Path) -> None:
    """The first run is the console script in a subprocess: the token comes from a real
    process environment."""
    env = {"GH_TOKEN": TOKEN}
    outputs = [
        ok(run_cli(["resolve", "v0.60.0", "--json"], gh, cache_dir=cache, env=env)),
        ok(invoke_cli(["releases", "--json"], gh, cache_dir=cache, env=env)),
        ok(invoke_cli(["resolve", "v0.57.0"], gh, cache_dir=cache, env={"GITHUB_TOKEN": TOKEN})),
        refused(invoke_cli(["resolve", "v0.59.5"], gh, cache_dir=cache, env=env), 2),
    ]
    api = [r for r in gh.requests if r.kind in ("core", "not_modified")]
    assert api and all(r.authenticated for r in api)
    for output in outputs:
        assert TOKEN not in str(output)
    assert cache.exists() and files_containing(cache, TOKEN) == []


def test_a_wrong_token_fails_without_echoing_it(gh: Emulator, cache: Path) -> None:
    wrong = "ghp_wrongButSecret0000000000000000000000"
    result = invoke_cli(["resolve", "v0.60.0", "--token", wrong], gh, cache_dir=cache)
    refused(result, 1)
    assert wrong not in result.stdout + result.stderr
    assert not cache.exists() or files_containing(cache, wrong) == []


def test_token_over_plain_http_to_another_host_is_refused(cache: Path) -> None:
    result = invoke_cli(
        ["resolve", "v0.60.0"],
        None,
        cache_dir=cache,
        api_url="http://github.example.com/api/v3",
        env={"GH_TOKEN": TOKEN},
    )
    stderr = refused(result, 2)
    assert TOKEN not in stderr + result.stdout


def test_token_is_not_forwarded_on_a_redirect_to_another_host(gh: Emulator, cache: Path) -> None:
    with Emulator(token=TOKEN) as other:
        elsewhere = other.api_url.replace("127.0.0.1", "localhost")
        gh.redirect(
            "matching-refs",
            f"{elsewhere}/repos/hatchet-dev/hatchet/git/matching-refs/tags/v",
            times=5,
        )
        result = invoke_cli(["resolve", "v0.60.0"], gh, cache_dir=cache, env={"GH_TOKEN": TOKEN})
        assert "Traceback" not in result.stderr and TOKEN not in str(result)
        # following the redirect is allowed, refusing it too; carrying the token along is not
        assert result.returncode != 0 or other.requests
        assert not [r for r in other.requests if "authorization" in r.headers]
