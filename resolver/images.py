"""Hatchet container images and release tags: pinning a compose file to a release.

Every Hatchet release is published as ``ghcr.io/hatchet-dev/hatchet/<image>:<release>``. After a
downgrade each of those references must point at the target release, or the next start of a
``migration`` service, of hatchet-lite or of a Helm pre-upgrade job migrates the database back up.

The rewrite is plain text, not YAML: only the characters of an image reference change, so
comments, anchors and aliases, quoting, line endings and trailing whitespace stay byte for byte.

Decisions (what the rewrite does with each tag form):

- ``image``, ``image:latest``, ``image:v0.71.0`` (any literal tag): becomes ``image:<release>``.
- ``image@sha256:...`` or ``image:tag@sha256:...``: a digest wins over any tag, so keeping it
  would keep the newer image. It becomes ``image:<release>`` and a warning says the digest was
  dropped (re-pin the release's digest if digests are required).
- ``image:${VAR:-v0.71.0}`` / ``image:${VAR-v0.71.0}``: the literal default becomes the release
  and a warning says ``VAR``, when set in the environment or ``.env``, still wins.
- ``image:${VAR}``, ``image:$VAR``, ``${VAR:?msg}``, an empty or non-literal default, or a tag
  mixing text and variables: not changed; a warning tells the user to set ``VAR=<release>``.
- The registry may also be a mirror host (``mirror.example.com:5000/hatchet-dev/hatchet/...``)
  or a variable (``${REGISTRY:-ghcr.io}/hatchet-dev/hatchet/...``): the tag is pinned the same way.
- References inside YAML comments and URLs are left alone; other images under
  ``hatchet-dev/hatchet/``, and Hatchet images in forms not listed here (e.g. a whole image in a
  variable default), are left alone with a warning.
- Services that look like migration jobs (name, command or entrypoint mentioning "migrat" or
  "goose") but do not run a Hatchet image get a warning: they may migrate the database back up.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from resolver.errors import BadInputError, ResolverError

REGISTRY_PATH = "ghcr.io/hatchet-dev/hatchet"
IMAGE_NAMES: tuple[str, ...] = (
    "hatchet-engine",
    "hatchet-api",
    "hatchet-admin",
    "hatchet-migrate",
    "hatchet-lite",
    "hatchet-dashboard",
    "hatchet-frontend",
)
"""The images published for every release; each also exists as ``<name>-dev``."""
KNOWN_IMAGES: frozenset[str] = frozenset(IMAGE_NAMES) | {f"{n}-dev" for n in IMAGE_NAMES}
HELM_TAG_VALUE = "sharedConfig.image.tag"

# A docker tag: a word character, then up to 127 word characters, dots and dashes.
_DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_VAR_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# The tag forms recognised after ``image:``; anything else stops the tag.
_TAG_PIECE = re.compile(rf"\$\{{[^{{}}\n]*\}}|\${_VAR_NAME}|[A-Za-z0-9_.-]+")
_BRACED_VAR = re.compile(rf"\$\{{(?P<name>{_VAR_NAME})(?:(?P<op>:?[-?+])(?P<arg>[^{{}}]*))?\}}")
# <registry>/hatchet-dev/hatchet/<name>: the registry is ghcr.io, a mirror host, or a variable.
_REFERENCE = re.compile(
    r"(?<![\w./@$}-])"
    r"(?P<registry>[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)+(?::\d+)?|localhost(?::\d+)?|\$\{[^{}\n]*\})"
    r"/hatchet-dev/hatchet/(?P<name>[a-z0-9][a-z0-9._-]*)(?![\w./-]*/)"
)
# Anything that still names a Hatchet image after the precise pass (e.g. inside a variable).
_LOOSE_REFERENCE = re.compile(r"hatchet-dev/hatchet/hatchet-[a-z0-9._-]*")
_URL_BEFORE = re.compile(r"\w+://\S*$")
_DIGEST = re.compile(r"@(?:sha256:[0-9a-fA-F]{64}|\$\{[^{}\n]*\}|\$" + _VAR_NAME + ")")
_MIGRATION_WORDS = re.compile(r"migrat|goose", re.IGNORECASE)


@dataclass(frozen=True)
class ImageChange:
    """One rewritten reference: 1-based line, image name, and the old and new full text."""

    line: int
    image: str
    old: str
    new: str


@dataclass(frozen=True)
class PinResult:
    """The rewritten text, what changed, and what could not be pinned safely."""

    text: str
    changes: list[ImageChange]
    warnings: list[str]
    original: str = field(default="", repr=False)
    """The text before the rewrite (for ``diff``)."""
    backup: Path | None = None
    """Where ``rewrite_compose_file`` kept the original bytes; None when nothing was written."""
    pinned_images: tuple[str, ...] = ()
    """Hatchet images (``hatchet-engine``, ...) the text now pins to the release, in order."""
    tag_variables: tuple[str, ...] = ()
    """Variables that decide a Hatchet image tag (``${ENGINE_TAG:-v0.71.0}``, ``$TAG``): set in
    the environment or ``.env``, they win over what the file says."""

    @property
    def changed(self) -> bool:
        return self.text != self.original


def image_reference(image: str, release: str) -> str:
    """The pinned reference of ``image`` (e.g. ``hatchet-engine``) at ``release``."""
    return f"{REGISTRY_PATH}/{image}:{release}"


def check_release_tag(release: str) -> str:
    """``release`` if it can be an image tag; BadInputError (exit 2) otherwise."""
    if not _DOCKER_TAG.fullmatch(release):
        raise BadInputError(f"{release!r} cannot be a container image tag")
    return release


@dataclass(frozen=True)
class _Tag:
    """The tag and digest text after an image name, with their extent in the source."""

    tag: str | None
    digest: str | None
    end: int


def _read_tag(text: str, pos: int) -> _Tag:
    tag: str | None = None
    if text.startswith(":", pos):
        cur = pos + 1
        while m := _TAG_PIECE.match(text, cur):
            cur = m.end()
        if cur > pos + 1:
            tag, pos = text[pos + 1 : cur], cur
    digest: str | None = None
    if m := _DIGEST.match(text, pos):
        digest, pos = m.group(0)[1:], m.end()
    return _Tag(tag, digest, pos)


def _comment_start(line: str) -> int:
    """Index where the YAML comment of ``line`` starts, or ``len(line)``.

    A ``#`` starts a comment at the line start or after whitespace, outside a quoted scalar.
    A quote only opens a scalar where a scalar can start (line start, or after ``:``, ``-``,
    ``[``, ``{``, ``,``, ``?`` and spaces), as YAML does; ``-c 'x'`` in a plain scalar is text.
    """
    quote: str | None = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote == '"':
            if ch == "\\":
                i += 1
            elif ch == '"':
                quote = None
        elif quote == "'":
            if ch == "'":
                quote = None
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return i
        elif ch in "'\"":
            before = line[:i].rstrip(" \t")
            if not before or before[-1] in ":-[{,?":
                quote = ch
        i += 1
    return len(line)


def _line_bounds(text: str, pos: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def _tag_variable(parsed: _Tag) -> str | None:
    """The variable a reference's tag comes from (or defaults through), if any."""
    if parsed.tag is None:
        return None
    var = _BRACED_VAR.fullmatch(parsed.tag) or re.fullmatch(rf"\$(?P<name>{_VAR_NAME})", parsed.tag)
    return var["name"] if var else None


def _plan_tag(name: str, parsed: _Tag, release: str, line: int) -> tuple[str | None, list[str]]:
    """The new ``:tag`` text for one reference (None: leave it) and the warnings it raises."""
    where = f"line {line}: {name}"
    tag, warnings = parsed.tag, []
    if parsed.digest is not None:
        if parsed.digest.startswith("$"):
            return None, [
                f"{where} is pinned by the digest variable {parsed.digest}; "
                f"set it to the digest of {release} (or remove it) before starting Hatchet"
            ]
        warnings.append(
            f"{where}: dropped digest {parsed.digest[:19]}... (a digest overrides the tag); "
            f"re-pin the digest of {release} if you require digests"
        )
    if tag is None or _DOCKER_TAG.fullmatch(tag):
        return f":{release}", warnings
    var = _BRACED_VAR.fullmatch(tag)
    if var and var["op"] in (":-", "-") and _DOCKER_TAG.fullmatch(var["arg"] or ""):
        new = f":${{{var['name']}{var['op']}{release}}}"
        warnings.append(
            f"{where}: pinned the default of ${{{var['name']}}} to {release}; if "
            f"{var['name']} is set in the environment or .env it still wins: set "
            f"{var['name']}={release} or unset it"
        )
        return new, warnings
    if var or re.fullmatch(rf"\${_VAR_NAME}", tag):
        var_name = var["name"] if var else tag[1:]
        return None, [
            f"{where}: the tag comes from ${var_name} and cannot be pinned in the file: set "
            f"{var_name}={release} in the environment or .env before starting Hatchet"
        ]
    return None, [
        f"{where}: the tag {tag!r} mixes text and variables and was not changed: make it "
        f"resolve to {release} before starting Hatchet"
    ]


def pin_compose(text: str, release: str) -> PinResult:
    """Rewrite every Hatchet image reference in ``text`` to ``release`` (see module docstring)."""
    check_release_tag(release)
    out: list[str] = []
    changes: list[ImageChange] = []
    warnings: list[str] = []
    copied = 0
    found = False
    pinned: list[str] = []
    variables: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _REFERENCE.finditer(text):
        spans.append(m.span())
        start, end = _line_bounds(text, m.start())
        line_text = text[start:end]
        if m.start() - start >= _comment_start(line_text):
            continue
        line = text.count("\n", 0, m.start()) + 1
        name = m["name"]
        if name not in KNOWN_IMAGES:
            warnings.append(
                f"line {line}: {REGISTRY_PATH}/{name} is not a Hatchet release image; not changed"
            )
            continue
        found = True
        parsed = _read_tag(text, m.end())
        if parsed.tag is None and text.startswith(":", m.end()):
            warnings.append(f"line {line}: {name} is followed by an empty tag; not changed")
            continue
        new_tag, raised = _plan_tag(name, parsed, release, line)
        warnings.extend(raised)
        if (variable := _tag_variable(parsed)) is not None:
            variables.append(variable)
        if new_tag is None:
            continue
        pinned.append(name)
        old = text[m.start() : parsed.end]
        new = text[m.start() : m.end()] + new_tag
        if old == new:
            continue
        out.append(text[copied : m.start()])
        out.append(new)
        copied = parsed.end
        changes.append(ImageChange(line=line, image=name, old=old, new=new))
    out.append(text[copied:])
    warnings.extend(_unhandled_references(text, spans, release))
    if not found:
        warnings.append(f"no {REGISTRY_PATH}/<image> reference found: nothing was pinned")
    warnings.extend(_migration_job_warnings(text, release))
    return PinResult(
        text="".join(out),
        changes=changes,
        warnings=list(dict.fromkeys(warnings)),
        original=text,
        pinned_images=tuple(dict.fromkeys(pinned)),
        tag_variables=tuple(dict.fromkeys(variables)),
    )


def _unhandled_references(text: str, handled: list[tuple[int, int]], release: str) -> list[str]:
    """Warnings for Hatchet image names in forms the precise pass does not rewrite."""
    warnings = []
    for m in _LOOSE_REFERENCE.finditer(text):
        if any(lo <= m.start() < hi for lo, hi in handled):
            continue
        start, end = _line_bounds(text, m.start())
        prefix = text[start : m.start()]
        if len(prefix) >= _comment_start(text[start:end]) or _URL_BEFORE.search(prefix):
            continue
        line = text.count("\n", 0, m.start()) + 1
        warnings.append(
            f"line {line}: {m[0]} is referenced in a form this tool does not rewrite: "
            f"pin it to {release} by hand"
        )
    return warnings


@dataclass
class _Service:
    name: str
    line: int
    image: str | None = None
    looks_like_migration: bool = False
    built: bool = False


def _split_lines(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.split("\n")]


def _uncommented(line: str) -> str:
    return line[: _comment_start(line)].rstrip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _scalar(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _services(text: str) -> list[_Service]:
    """The services of a compose file, read line by line (indentation-based, no YAML library)."""
    lines = [_uncommented(line) for line in _split_lines(text)]
    anchors = {
        m["name"]: _scalar(m["value"])
        for line in lines
        if (m := re.search(r"&(?P<name>[\w.-]+)[ \t]+(?P<value>[^\s&*{}\[\],][^{}\[\]]*)$", line))
    }
    services: list[_Service] = []
    in_services = False
    service_indent: int | None = None
    current: _Service | None = None
    continuation_of: int | None = None  # indent of a command:/entrypoint: key being continued
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        indent = _indent(line)
        if indent == 0:
            in_services = re.match(r"['\"]?services['\"]?\s*:\s*$", line) is not None
            service_indent, current, continuation_of = None, None, None
            continue
        if not in_services:
            continue
        if service_indent is None:
            service_indent = indent
        if indent <= service_indent:
            header = re.match(r"\s*(['\"]?)(?P<key>[^'\"\s:][^:]*?)\1\s*:", line)
            current = (
                _Service(header["key"], number) if header and indent == service_indent else None
            )
            if current:
                services.append(current)
                if _MIGRATION_WORDS.search(current.name):
                    current.looks_like_migration = True
            continuation_of = None
            continue
        if current is None:
            continue
        if continuation_of is not None and (
            indent > continuation_of or (indent == continuation_of and line.lstrip()[:1] == "-")
        ):
            if _MIGRATION_WORDS.search(_REFERENCE.sub("", line)):
                current.looks_like_migration = True
            continue
        continuation_of = None
        pair = re.match(r"\s*(?P<key>[\w-]+)\s*:(?P<value>.*)$", line)
        if not pair:
            continue
        key, value = pair["key"], pair["value"].strip()
        if key == "image" and current.image is None:
            alias = re.fullmatch(r"\*([\w.-]+)", value)
            current.image = anchors.get(alias[1], value) if alias else _scalar(value)
        elif key == "build":
            current.built = True
        elif key in ("command", "entrypoint"):
            continuation_of = indent
            if _MIGRATION_WORDS.search(_REFERENCE.sub("", value)):
                current.looks_like_migration = True
    return services


def _migration_job_warnings(text: str, release: str) -> list[str]:
    warnings = []
    for svc in _services(text):
        if not svc.looks_like_migration:
            continue
        if svc.image and _REFERENCE.search(svc.image):
            continue
        if svc.image:
            what = f"its image {svc.image!r} is not a Hatchet image"
        else:
            what = "it is built locally" if svc.built else "it names no image"
        warnings.append(
            f"line {svc.line}: service {svc.name!r} looks like a migration job and {what}: "
            f"make sure it runs the migrations of {release} (or none at all), or it will "
            "migrate the database back up"
        )
    return warnings


def _diff_lines(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1] + "\n\\ No newline at end of file\n")
    return lines


def diff(old: str, new: str, filename: str) -> str:
    """A unified diff of ``old`` to ``new`` (empty when equal), as ``diff -u`` prints it."""
    return "".join(
        difflib.unified_diff(
            _diff_lines(old), _diff_lines(new), fromfile=f"a/{filename}", tofile=f"b/{filename}"
        )
    )


def _free_backup_path(path: Path, original: bytes) -> Path:
    """``path.bak``; if it holds something else, ``path.bak.1``, ``.bak.2``... (never clobber)."""
    candidate = path.with_name(path.name + ".bak")
    n = 0
    while candidate.exists():
        if candidate.is_file() and candidate.read_bytes() == original:
            return candidate
        n += 1
        candidate = path.with_name(f"{path.name}.bak.{n}")
    return candidate


def _write_atomically(target: Path, data: bytes, like: os.stat_result) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, stat.S_IMODE(like.st_mode))
        with contextlib.suppress(PermissionError):
            os.chown(tmp, like.st_uid, like.st_gid)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def rewrite_compose_file(path: Path, release: str, *, dry_run: bool) -> PinResult:
    """Pin the Hatchet images of the compose file at ``path`` to ``release``.

    Unless ``dry_run``, and only when something changes: the original bytes go to ``path.bak``
    (or ``.bak.N`` if an older, different backup is there) and the new text replaces the file
    atomically, keeping its mode. A symlink is followed: its target is rewritten.
    """
    check_release_tag(release)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"compose file {path} does not exist") from None
    except OSError as exc:
        raise BadInputError(f"cannot read compose file {path}: {exc.strerror}") from None
    # surrogateescape keeps any byte that is not UTF-8 exactly as it was.
    result = pin_compose(raw.decode("utf-8", errors="surrogateescape"), release)
    if dry_run or not result.changed:
        return result
    new_raw = result.text.encode("utf-8", errors="surrogateescape")
    target = path.resolve()
    backup = _free_backup_path(path, raw)
    try:
        backup.write_bytes(raw)
        _write_atomically(target, new_raw, target.stat())
    except OSError as exc:
        raise ResolverError(f"cannot rewrite compose file {path}: {exc.strerror or exc}") from None
    return PinResult(
        text=result.text,
        changes=result.changes,
        warnings=result.warnings,
        original=result.original,
        backup=backup,
        pinned_images=result.pinned_images,
        tag_variables=result.tag_variables,
    )


def next_steps(release: str, pinned: PinResult | None = None, compose_file: str = "") -> list[str]:
    """What to do after a downgrade to ``release`` so that nothing migrates the database up.

    ``pinned``: the result of pinning ``compose_file``. When it pinned Hatchet images, the
    list of images is not repeated: only what the file cannot settle is left (the Helm value,
    hatchet-lite run elsewhere, tag variables in ``.env``, references it could not pin).
    """
    helm = (
        f"Helm: `helm upgrade ... --set {HELM_TAG_VALUE}={release}` (and remove any per-service "
        "image tag overrides)."
    )
    if pinned is None or not pinned.pinned_images:
        lines = [f"Pin every Hatchet image to {release} before starting anything:"]
        lines += [f"  {image_reference(name, release)}" for name in IMAGE_NAMES]
        return [
            *lines,
            "  (and the -dev variants, e.g. hatchet-engine-dev, if you run them)",
            "The compose `migration` service (hatchet-migrate), hatchet-lite's start script and "
            "the Helm pre-upgrade job migrate the database on every start: left on a newer tag, "
            "they migrate it straight back up.",
            "Compose: `hatchet-schema downgrade ... --compose-file FILE` pins the tags (or edit "
            "them by hand); check `.env` and the environment for tag variables set to a newer "
            "release.",
            helm,
        ]
    where = compose_file or "the compose file"
    names = ", ".join(pinned.pinned_images)
    lines = [
        f"{where} now pins {names} to {release}. Still to do before starting anything, or a "
        "newer hatchet-migrate, hatchet-lite or Helm pre-upgrade job migrates the database "
        "straight back up:"
    ]
    if pinned.tag_variables:
        settings = " ".join(f"{name}={release}" for name in pinned.tag_variables)
        lines.append(
            f"  .env and the environment: {settings} (or unset them): these variables decide "
            f"image tags in {where} and win over its defaults."
        )
    if pinned.warnings:
        lines.append(f"  the lines of {where} the warnings above name: fix or check each.")
    if "hatchet-lite" not in pinned.pinned_images:
        lite = image_reference("hatchet-lite", release)
        lines.append(f"  hatchet-lite, if it runs outside {where}: {lite}")
    lines += [
        f"  other compose files or hosts running Hatchet images: pin them to {release} too.",
        f"  Helm, if Hatchet also runs on Kubernetes: `helm upgrade ... --set "
        f"{HELM_TAG_VALUE}={release}` (and remove any per-service image tag overrides).",
    ]
    return lines
