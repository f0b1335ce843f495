"""What a message may show a person: no password in any form (:func:`migrator.database.
scrub_message`), and no input of the command so long that echoing it would drown the message.

``cli.main()`` remembers the command's inputs (:func:`remember_inputs`: its arguments and the
environment variables the commands read); :func:`shown` is then the one place that masks and
shortens, for the tool's errors and click's usage errors alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

__all__ = ["remember_inputs", "shown"]

# An input longer than _LONG_INPUT characters is echoed as its first _SHOWN_CHARS and "...";
# so is any run of _LONG_RUN non-space characters (a long input echoed in part, e.g. a URL).
_LONG_INPUT = 100
_SHOWN_CHARS = 60
_LONG_RUN = 200
# What the command was given: the arguments, and the environment variables the commands read.
_inputs: list[str] = []


def remember_inputs(args: Sequence[str], environ: Mapping[str, str]) -> None:
    """Take ``args`` and the tool's variables of ``environ`` as the inputs of this command (the
    previous command's are forgotten)."""
    _inputs.clear()
    _inputs.extend(args)
    _inputs.extend(a.partition("=")[2] for a in args if a.startswith("--") and "=" in a)
    _inputs.extend(
        value
        for name, value in environ.items()
        if name in ("DATABASE_URL", "GITHUB_API_URL", "GH_TOKEN", "GITHUB_TOKEN")
        or name.startswith("HATCHET_SCHEMA_")
    )


def shown(message: str) -> str:
    """``message`` as it may be shown: no password, in any form, and long inputs cut short. The
    scrub comes last too: the shortening adds text ("... (N characters)") a password could be."""
    from migrator.database import scrub_message  # not at import: main() imports this module

    return scrub_message(_shorten_inputs(scrub_message(message)))


def _shorten_inputs(message: str) -> str:
    """``message`` (scrubbed, about to be shown) with every long input it echoes cut short."""
    from migrator.database import scrub_message

    def short(form: str, length: int) -> str:
        return f"{form[:_SHOWN_CHARS]}... ({length} characters)"

    long_inputs = {text for text in _inputs if len(text) > _LONG_INPUT}
    for text in sorted(long_inputs, key=len, reverse=True):
        forms = {text, repr(text)[1:-1], json.dumps(text)[1:-1], scrub_message(text)}
        forms.add(json.dumps(text, ensure_ascii=False)[1:-1])
        for form in sorted(forms, key=len, reverse=True):
            message = message.replace(form, short(form, len(text)))
    return re.sub(rf"\S{{{_LONG_RUN},}}", lambda m: short(m.group(), len(m.group())), message)
