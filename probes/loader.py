"""A transparent DataLoader wrapper that times how long the training loop waits for each batch."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable


class WrappedLoader:
    """Iterates like the wrapped loader; only `next()` is timed (the user's step runs between calls).

    Everything else (len, sampler, dataset, batch_size...) is forwarded to the real loader.
    """

    def __init__(self, loader: Iterable, on_wait: Callable[[float], None],
                 on_first_iter: Callable[[Any], None] | None = None):
        self._loader = loader
        self._on_wait = on_wait
        self._on_first_iter = on_first_iter

    def __iter__(self):
        if self._on_first_iter is not None:
            self._on_first_iter(self._loader)
            self._on_first_iter = None
        t0 = time.perf_counter()
        it = iter(self._loader)          # worker start-up counts as waiting for the first batch
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            t1 = time.perf_counter()
            self._on_wait(t1 - t0)
            yield batch
            t0 = time.perf_counter()

    def __len__(self):
        return len(self._loader)

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def __repr__(self):
        return f"WrappedLoader({self._loader!r})"


def loader_settings(loader: Any) -> dict[str, Any]:
    """The settings that decide whether a DataLoader keeps up (plain data, for the run log)."""
    info: dict[str, Any] = {"class": type(loader).__name__}
    for attr in ("batch_size", "num_workers", "pin_memory", "persistent_workers", "prefetch_factor", "drop_last"):
        value = getattr(loader, attr, None)
        if value is None or isinstance(value, (bool, int, float, str)):
            info[attr] = value
    try:
        info["len"] = len(loader)
    except TypeError:
        info["len"] = None
    return info
