"""Short, useful error messages about the user's code: the file, the line, what went wrong.

A traceback through torch internals is a wall of text; the user wants the one line of *their* code.
"""
from __future__ import annotations

import os
import re
import importlib.util
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path

from .findings import location



def _torch_dir() -> str | None:
    spec = importlib.util.find_spec("torch")         # located, not imported: the CLI stays light
    return os.path.dirname(spec.origin) if spec and spec.origin else None


# frames in these folders are library code, never "the user's line"
_LIBRARY_ROOTS = tuple(
    str(Path(p).resolve()) for p in {
        _torch_dir(), os.path.dirname(os.path.abspath(__file__)),
        sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    if p)


class UserCodeError(Exception):
    """A failure of the user's model file, already turned into a short message."""

    def __init__(self, message: str, location: str | None = None, stage: str = ""):
        super().__init__(message)
        self.message = message
        self.location = location
        self.stage = stage


@dataclass
class Frame:
    file: str
    line: int
    function: str


def _is_library(file: str) -> bool:
    try:
        path = str(Path(file).resolve())
    except OSError:
        return True
    return file.startswith("<") or any(path == root or path.startswith(root + os.sep) for root in _LIBRARY_ROOTS)


def user_frame(tb, user_file: str | os.PathLike | None = None) -> Frame | None:
    """The innermost traceback frame in the user's file (else in any non-library file)."""
    frames = traceback.extract_tb(tb)
    wanted = str(Path(user_file).resolve()) if user_file else None
    if wanted:
        for fr in reversed(frames):
            if fr.filename and _same(fr.filename, wanted):
                return Frame(fr.filename, fr.lineno, fr.name)
    for fr in reversed(frames):
        if fr.filename and not _is_library(fr.filename):
            return Frame(fr.filename, fr.lineno, fr.name)
    return None


def _same(a: str, b: str) -> bool:
    try:
        return str(Path(a).resolve()) == b
    except OSError:
        return False


def exception_text(exc: BaseException, limit: int = 400) -> str:
    """The exception's own message, first meaningful line, without PyTorch's C++ noise."""
    text = str(exc).strip()
    if isinstance(exc, SyntaxError):
        text = exc.msg or text
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = repr(exc.args[0])
    # drop C++ stack traces and "Exception raised from ..." tails
    text = re.split(r"\n\s*(Exception raised from|frame #\d)", text)[0]
    first = text.splitlines()[0] if text else ""
    if not first:
        first = type(exc).__name__
    elif not isinstance(exc, RuntimeError) or type(exc) is not RuntimeError:
        first = f"{type(exc).__name__}: {first}"
    return first if len(first) <= limit else first[: limit - 1] + "…"


def describe_failure(exc: BaseException, user_file, stage: str, context: str = "") -> UserCodeError:
    """Turn an exception raised by user code into `file:line in function: message[; context]`."""
    if isinstance(exc, UserCodeError):
        return exc
    if isinstance(exc, SyntaxError) and exc.filename and not exc.filename.startswith("<"):
        loc = location(exc.filename, exc.lineno)
        msg = f"{loc}: syntax error: {exc.msg}"
        if exc.text:
            msg += f"\n    {exc.text.rstrip()}"
        return UserCodeError(msg, loc, stage)
    frame = user_frame(exc.__traceback__, user_file)
    loc = location(frame.file, frame.line) if frame else location(str(user_file), None)
    where = f"{loc} in {frame.function}" if frame and frame.function != "<module>" else loc
    if isinstance(exc, SystemExit):
        msg = f"{where}: the file called sys.exit({exc.code!r}) while {stage}"
    else:
        msg = f"{where}: {exception_text(exc)}"
        if context:
            msg += f"; {context}"
    return UserCodeError(msg, loc, stage)


_FAULT_LINE = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


def fault_location(text: str, user_file) -> str | None:
    """'file:line in function' of the user's innermost line in a faulthandler dump, if there is one."""
    frame = frame_from_fault_dump(text, user_file)
    return f"{location(frame.file, frame.line)} in {frame.function}" if frame else None


def frame_from_fault_dump(text: str, user_file) -> Frame | None:
    """The user's innermost line in a faulthandler dump (hang or native crash); most recent call first."""
    wanted = str(Path(user_file).resolve()) if user_file else None
    frames = [Frame(m["file"], int(m["line"]), m["func"]) for m in _FAULT_LINE.finditer(text)]
    for fr in frames:
        if wanted and _same(fr.file, wanted):
            return fr
    for fr in frames:
        if not _is_library(fr.file):
            return fr
    return None


def signal_name(returncode: int) -> str:
    if returncode < 0:
        import signal
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"
