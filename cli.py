"""hatchet-schema command line: a thin typer layer wiring ``resolver`` and ``migrator``."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _root() -> None:
    """Move a self-hosted Hatchet PostgreSQL schema back to an older release, safely."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
