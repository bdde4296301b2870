"""The lines of the user's file around a finding's location, for its card: read safely (size-capped, decoded
as Python decodes source, re-read when the file changes)."""
from __future__ import annotations

import functools
import os
import re
import stat
import tokenize

MAX_SOURCE_BYTES = 2 * 1024 * 1024
_LINE_SUFFIX = re.compile(r"\s*(\d+)(?:\s+in\s+\S.*)?")     # "13" or "13 in forward" after the last ':'


def split_location(location: str | None) -> tuple[str, int] | None:
    """'path/to/file.py:13' (or '...:13 in forward') -> ('path/to/file.py', 13); None for any other form.
    Split at the last ':', so a Windows drive letter stays in the path."""
    if not isinstance(location, str):
        return None
    path, sep, rest = location.strip().rpartition(":")
    match = _LINE_SUFFIX.fullmatch(rest) if sep else None
    if match is None or not path.lower().endswith(".py"):
        return None
    return path, int(match.group(1))


def source_excerpt(location: str | None, context: int = 2) -> tuple[int, list[str]] | None:
    """The line a location names and `context` lines either side of it, as (first line number, lines).

    The path is relative to the working folder or absolute; only a regular `.py` file under 2 MiB is read,
    and it is only read (never run). None when anything is off: no line, no such file or line, unreadable."""
    parsed = split_location(location)
    if parsed is None:
        return None
    path, line = parsed
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SOURCE_BYTES:
        return None
    lines = _source_lines(os.path.abspath(path), info.st_mtime_ns, info.st_size)
    if lines is None or not 1 <= line <= len(lines):
        return None
    first = max(1, line - max(0, context))
    return first, list(lines[first - 1:line + max(0, context)])


def excerpt_text(location: str | None, context: int = 2) -> str | None:
    """The source lines around a finding's 'file.py:line', numbered from the file's own line numbers, the
    finding's line marked with an arrow; None when the location names no readable line of a .py file."""
    excerpt = source_excerpt(location, context)
    if excerpt is None:
        return None
    first, lines = excerpt
    _, line = split_location(location)
    width = len(str(first + len(lines) - 1))
    return "\n".join(f"{'→' if n == line else ' '} {n:>{width}}  {text}" for n, text in enumerate(lines, first))


@functools.lru_cache(maxsize=64)
def _source_lines(path: str, mtime_ns: int, size: int) -> tuple[str, ...] | None:
    """A source file's lines (read once per path, modification time and size), or None when unreadable.
    Decoded as Python would (its coding line, else UTF-8), falling back to UTF-8 with replacements."""
    try:
        try:
            with tokenize.open(path) as f:
                text = f.read(MAX_SOURCE_BYTES + 1)
        except (SyntaxError, UnicodeDecodeError, LookupError):
            with open(path, "rb") as f:
                raw = f.read(MAX_SOURCE_BYTES + 1)
            text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    except (OSError, ValueError):
        return None
    lines = text.split("\n")        # Python numbers lines by newlines only (not form feeds, unlike splitlines)
    if lines and lines[-1] == "":
        lines.pop()
    return tuple(lines)
