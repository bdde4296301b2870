"""Patches: the change that fixes a finding, as a unified diff of the user's file.

For the findings whose fix is mechanical (a plain list of layers becomes nn.ModuleList, model.forward(x)
becomes model(x), zero_grad() goes back before backward(), ...), `patch_for(finding)` reads the file the
finding's location names, rewrites it with libcst (a concrete syntax tree: every byte outside the changed
lines stays as it was, comments and formatting included) and returns a `Patch`, or None wherever the change
is not certain: the card then keeps its words. One function per code, in probes/patches/registration.py
(how a model registers its parts), loop.py (the training and validation loop), optimizer.py (its
zero_grad() and step() calls) and loss.py.

`attach(findings)` adds the optional `patch` field (the diff text) to the finding dicts that have one;
`apply(patch)` writes the new file after a backup beside it (FILE.bak), refusing when the file changed since
the patch was made. Torch-free, and it never runs the user's code: it only reads and rewrites source.
"""
from __future__ import annotations

import difflib
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import libcst as cst

from ._cst import Edits, NotCertain, Source

MAX_SOURCE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Patch:
    path: Path          # the file it rewrites (absolute)
    shown: str          # the file as the finding names it (the diff's a/ and b/ names)
    before: bytes       # the file as it was read
    after: bytes        # the file with the fix
    diff: str           # unified diff, before -> after

    def current(self) -> bool:
        """The file still holds exactly what the patch was made from."""
        try:
            return self.path.read_bytes() == self.before
        except OSError:
            return False


def _patchers() -> dict[str, Callable[[Source, dict, int], Edits | None]]:
    from . import loop, loss, optimizer, registration
    return {**registration.PATCHERS, **loop.PATCHERS, **optimizer.PATCHERS, **loss.PATCHERS}


@functools.lru_cache(maxsize=8)
def _parsed(data: bytes) -> Source:
    """A file's tree, parsed once for all its findings (the tree is never changed in place)."""
    return Source(data)


def codes() -> tuple[str, ...]:
    """The finding codes that can get a patch (when the change is certain)."""
    return tuple(sorted(_patchers()))


def _split(location: str | None) -> tuple[str, int] | None:
    if not isinstance(location, str):
        return None
    path, sep, line = location.strip().rpartition(":")
    line = line.split(" ")[0]
    if not sep or not line.isdigit() or not path.endswith(".py"):
        return None
    return path, int(line)


def patch_for(finding: dict[str, Any], base_dir: str | os.PathLike | None = None) -> Patch | None:
    """The patch that fixes `finding` (a Finding.to_dict()), made against the file as it is now; None when
    its code has no mechanical fix, the file cannot be read or parsed, or the change is not certain. The
    location's path is relative to `base_dir` (default: the working folder) unless absolute."""
    patcher = _patchers().get(finding.get("code"))
    where = _split(finding.get("location"))
    if patcher is None or where is None:
        return None
    shown, line = where
    path = Path(base_dir or os.getcwd(), shown).resolve()
    try:
        if not path.is_file() or path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        before = path.read_bytes()
        source = _parsed(before)
    except (OSError, ValueError, SyntaxError, RecursionError, cst.ParserSyntaxError):
        return None             # unreadable, or not Python this parser reads: the card keeps its words
    try:
        edits = patcher(source, finding, line)
        after = source.apply(edits) if edits else None
    except NotCertain:
        return None
    except Exception:           # noqa: BLE001 - a patcher's own failure: no patch, never a broken card
        return None
    if after is None or after == before:
        return None
    return Patch(path=path, shown=shown, before=before, after=after, diff=unified_diff(shown, before, after,
                                                                                       source.encoding))


def unified_diff(shown: str, before: bytes, after: bytes, encoding: str = "utf-8") -> str:
    name = shown.replace(os.sep, "/")
    old, new = (text.decode(encoding, errors="replace").splitlines(keepends=True) for text in (before, after))
    lines = list(difflib.unified_diff(old, new, fromfile=f"a/{name}" if not os.path.isabs(shown) else name,
                                      tofile=f"b/{name}" if not os.path.isabs(shown) else name, n=2))
    # a last line without a newline is marked as diff and patch mark it
    return "".join(ln if ln.endswith(("\n", "\r")) else ln + "\n\\ No newline at end of file\n" for ln in lines)


def attach(findings: list[dict[str, Any]], base_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Give each finding that has a patch its `patch` field (the diff), in place; a failure of ours only means
    no patch for that finding. Returns the list."""
    for f in findings:
        try:
            patch = patch_for(f, base_dir)
        except Exception:       # noqa: BLE001 - a patch is an extra: the finding stands without it
            patch = None
        if patch is not None:
            f["patch"] = patch.diff
    return findings


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def apply(patch: Patch, backup: bool = True) -> Path | None:
    """Write the fixed file, after copying the current one to FILE.bak beside it (unless `backup` is False);
    returns the backup's path. Refuses (ValueError) when the file changed since the patch was made."""
    if not patch.current():
        raise ValueError(f"{patch.shown}: the file changed since this fix was made; check it again first")
    kept = None
    if backup:
        kept = backup_path(patch.path)
        kept.write_bytes(patch.before)
    _write(patch.path, patch.after)
    return kept


def apply_in_turn(findings: list[dict[str, Any]], only: Path | None = None) -> list[tuple[dict, Patch]]:
    """Each finding's patch, made against the file as the previous one left it, applied (no backup: the
    caller keeps one); with `only`, to that file alone. Returns (finding, patch) for each one applied, the
    finding as given (its lines as they were before any patch)."""
    applied = []
    given = [f for f in findings if f.get("code") in _patchers()]
    left = [{**f, "_given": i} for i, f in enumerate(given)]
    while left:
        f = left.pop(0)
        patch = patch_for(f)
        if patch is None or (only is not None and patch.path != only):
            continue
        apply(patch, backup=False)
        applied.append((given[f["_given"]], patch))
        left = follow(left, patch)
    return applied


def moved_lines(patch: Patch) -> Callable[[int], int | None]:
    """Where each line of the file before the patch is after it (None: a line the patch changed)."""
    import bisect
    old = patch.before.splitlines()
    new = patch.after.splitlines()
    blocks = [b for b in difflib.SequenceMatcher(None, old, new, autojunk=False).get_matching_blocks() if b.size]
    starts = [b.a for b in blocks]

    def where(line: int) -> int | None:
        i = bisect.bisect_right(starts, line - 1) - 1
        if i < 0 or not blocks[i].a <= line - 1 < blocks[i].a + blocks[i].size:
            return None
        return blocks[i].b + (line - 1 - blocks[i].a) + 1
    return where


def follow(findings: list[dict[str, Any]], patch: Patch) -> list[dict[str, Any]]:
    """The findings with every 'file:line' of the patched file (location, evidence) moved to where that line
    is after the patch; a finding whose own line the patch changed is left out (it was that patch's)."""
    where = moved_lines(patch)
    out = []
    for f in findings:
        spot = _split(f.get("location"))
        if spot and Path(spot[0]).resolve() == patch.path:
            line = where(spot[1])
            if line is None:
                continue
            f = {**f, "location": f"{spot[0]}:{line}"}
            evidence = dict(f.get("evidence") or {})
            for key, value in evidence.items():
                named = _split(value) if isinstance(value, str) else None
                if named and Path(named[0]).resolve() == patch.path and where(named[1]) is not None:
                    evidence[key] = f"{named[0]}:{where(named[1])}"
            f["evidence"] = evidence
        out.append(f)
    return out


def restore(patch: Patch, backup: Path) -> None:
    """Put the file back as it was before `apply(patch)` (from its backup)."""
    _write(patch.path, backup.read_bytes())


def _write(path: Path, data: bytes) -> None:
    """Replace the file's bytes in place (same inode, so its mode, owner and links stay), flushed to disk."""
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
