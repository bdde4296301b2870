"""Cadences: when a statistic is recorded. A schedule is a plain callable `step -> bool`."""
from __future__ import annotations

from typing import Callable

Schedule = Callable[[int], bool]


def every(n: int, offset: int = 0) -> Schedule:
    """Due on steps offset, offset + n, offset + 2n, ..."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"every(n={n!r}): n must be a whole number of steps >= 1")

    def due(step: int) -> bool:
        return step >= offset and (step - offset) % n == 0

    due.every = n          # read by the README/report to describe the cadence
    return due


def first(n: int, then_every: int = 0) -> Schedule:
    """Due on steps 0 .. n-1, then every `then_every` steps (never again if 0)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"first(n={n!r}): n must be a whole number of steps >= 0")
    later = every(then_every) if then_every else never

    def due(step: int) -> bool:
        return step < n or later(step)

    due.describe = f"steps 0-{n - 1}" + (f", then every {then_every} steps" if then_every else "")
    return due


def never(step: int) -> bool:
    return False


never.every = 0


def as_schedule(name: str, value) -> Schedule:
    """Turn a user's cadence setting into a schedule, or fail naming the setting and the bad value.

    Accepted: N >= 1 (every N steps), 0 or None (off), or a callable step -> bool.
    """
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value == 0):
        return never
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return every(value)
    if callable(value):
        return value
    raise ValueError(
        f"Probe({name}={value!r}): a cadence is a whole number of steps >= 1 (record every N steps), "
        f"0 or None to turn it off, or a callable step -> bool")


def describe(schedule: Schedule) -> str:
    if hasattr(schedule, "describe"):
        return schedule.describe
    n = getattr(schedule, "every", None)
    if n is None:
        return "custom"
    return "off" if n == 0 else ("every step" if n == 1 else f"every {n} steps")
