"""Safe relative artifact paths: the one gate every path inside a repository passes.

A path is accepted only if, in every decoding a layer below might apply (URL
decoding, repeated), it is relative, has no ``..`` component, no backslash, no
NUL or other control character, and does not name Hokusai's reserved area.
What comes out is a plain ``a/b/c`` string (empty for the repository root)
that is joined to the root with ``/`` only.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

# Blobs, temp files and the root marker live under this name; a client path
# naming it (at any depth) could overwrite or read them, so it is refused.
RESERVED = ".hokusai"
# Decoding rounds checked: a proxy or framework may decode once or twice more
# than we do, so "%252e%252e" must be refused as firmly as "..".
_DECODE_ROUNDS = 3
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnsafePath(ValueError):
    """A path that could reach outside the repository; the message names the rule."""


def _check_form(form: str) -> None:
    if _CONTROL.search(form):
        raise UnsafePath("control characters (NUL, newline, ...) are not allowed")
    if "\\" in form:
        raise UnsafePath("backslashes are not allowed")
    if form.startswith("/") or re.match(r"^[A-Za-z]:", form):
        raise UnsafePath("absolute paths are not allowed")
    for part in form.split("/"):
        if part == "..":
            raise UnsafePath("'..' is not allowed")
        if part.startswith(RESERVED):
            raise UnsafePath(f"names starting with '{RESERVED}' are reserved")


def clean(path: str | None) -> str:
    """``path`` as a normalised relative path ('' for the root), or ``UnsafePath``."""
    if path is None:
        return ""
    if not isinstance(path, str):
        raise UnsafePath("path must be a string")
    form = path
    for _ in range(_DECODE_ROUNDS):
        _check_form(form)
        decoded = unquote(form)
        if decoded == form:
            break
        form = decoded
    else:
        _check_form(form)
    # The literal path (not a decoded form) is what is stored: a file may be
    # called "100%25.txt". "." and empty components collapse, as on a disk.
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return "/".join(parts)


def join(*paths: str | None) -> str:
    """Join already-clean relative paths (empty ones are skipped)."""
    parts = [p for p in paths if p]
    return posixpath.join(*parts) if parts else ""


def is_within(relative: str, directory: str) -> bool:
    """Whether the clean path ``relative`` is ``directory`` or below it."""
    return not directory or relative == directory or relative.startswith(directory + "/")
