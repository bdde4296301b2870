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
    memory = out_of_memory_text(text, python=isinstance(exc, MemoryError))
    if memory:
        return memory
    first = text.splitlines()[0] if text else ""
    if not first:
        first = type(exc).__name__
    elif not isinstance(exc, RuntimeError) or type(exc) is not RuntimeError:
        first = f"{type(exc).__name__}: {first}"
    return first if len(first) <= limit else first[: limit - 1] + "…"


# torch's allocators: the CPU one gives bytes ("can't allocate memory" on Linux, "not enough memory" on
# Windows); CUDA and MPS give a size with a unit ("CUDA out of memory. Tried to allocate 4096.00 GiB. GPU 0 has
# a total capacity of 79.15 GiB of which 78.60 GiB is free. ..." and, before torch 2.1, "(GPU 0; 15.78 GiB total
# capacity; ... 3.44 MiB free; ...)")
_CPU_OOM = re.compile(r"DefaultCPUAllocator: [^:]*: you tried to allocate (?P<bytes>\d+) bytes")
_GPU_OOM = re.compile(r"(?P<backend>CUDA|MPS backend) out of memory.*?Tried to allocate "
                      r"(?P<size>[\d.]+) ?(?P<unit>bytes|B|KiB|MiB|GiB|TiB)", re.DOTALL)
_GPU_FREE = re.compile(r"(?P<gpu>GPU \d+) has a total capacity of (?P<total>[\d.]+ ?\w+) of which "
                       r"(?P<free>[\d.]+ ?\w+) is free|\((?P<old_gpu>GPU \d+); (?P<old_total>[\d.]+ ?\w+) total "
                       r"capacity;.*?(?P<old_free>[\d.]+ ?\w+) free;")
_UNITS = {"bytes": 1, "B": 1, "KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30, "TiB": 2 ** 40}
_ADVICE = "make the model (or the batch) smaller or check it on a {} with more memory"


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _bytes(text: str) -> str:
    """'4096.00 GiB' as the size people read ('4.0 TiB'); the text itself when it is not a size."""
    m = re.fullmatch(r"([\d.]+) ?(\w+)", text.strip())
    if not m or m[2] not in _UNITS:
        return text
    return _size(float(m[1]) * _UNITS[m[2]])


def out_of_memory_text(text: str, python: bool = False) -> str | None:
    """A torch allocator's out-of-memory message (CPU, CUDA, MPS) or a Python MemoryError said plainly:
    that memory ran out, how much was asked for and what to do; None for any other message."""
    cpu = _CPU_OOM.search(text)
    if cpu:
        return (f"not enough memory: the model asked for {_size(int(cpu['bytes']))} in one tensor; "
                + _ADVICE.format("machine"))
    gpu = _GPU_OOM.search(text)
    if gpu:
        asked = _size(float(gpu["size"]) * _UNITS[gpu["unit"]])
        which = "GPU" if gpu["backend"] == "CUDA" else "MPS"
        free = _GPU_FREE.search(text)
        has = ""
        if free:
            name, total, left = ((free["gpu"], free["total"], free["free"]) if free["gpu"]
                                 else (free["old_gpu"], free["old_total"], free["old_free"]))
            has = f" ({name} has {_bytes(left)} free of {_bytes(total)})"
        return (f"not enough {which} memory: the model asked for {asked} in one tensor{has}; "
                + _ADVICE.format("GPU" if which == "GPU" else "machine"))
    if python:
        first = text.splitlines()[0] if text else ""
        return f"not enough memory (MemoryError{': ' + first if first else ''}); " + _ADVICE.format("machine")
    return None


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
