"""Settings for talking to GitHub: API base, token, repository, path, cache, offline, and the
two sources that replace the API: a bundle file or a local git clone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_REPO = "hatchet-dev/hatchet"
DEFAULT_MIGRATIONS_PATH = "cmd/hatchet-migrate/migrate/migrations"


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("hatchet-schema"))


@dataclass(frozen=True)
class GitHubSettings:
    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)
    repo: str = DEFAULT_REPO
    migrations_path: str = DEFAULT_MIGRATIONS_PATH
    cache_dir: Path = field(default_factory=default_cache_dir)
    offline: bool = False
    bundle: Path | None = None
    """Read everything from this bundle file (``hatchet-schema bundle``); never the network."""
    git_dir: Path | None = None
    """Read tags, listings and blobs from this local clone (bare or not) instead of the API."""
