"""The check's training batches, from what the model file gives: make_loader() (each epoch through the Probe's
loader wrapper, so data wait is timed), make_batch(batch_size), or inputs inferred from the model's first layer
(their targets are then inferred from the model's output, by the worker).

Runs only inside the worker process (probes.worker): it calls the user's code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from .construction import construction_sites
from .errors import UserCodeError
from .modelfile import UserHooks, def_location, infer_inputs, split_batch, to_device

Batch = tuple[Any, Any]     # (inputs, targets); targets None for inferred inputs


class Batches:
    """Where a check's batches come from; `first()` once, to see the model's inputs, then `training()`."""

    def __init__(self, hooks: UserHooks, path: Path, batch_size: int, device: torch.device):
        self.hooks, self.path, self.batch_size, self.device = hooks, path, batch_size, device
        self.loader = None                          # what make_loader() built, once
        self.loader_location: str | None = None     # 'file:line' where make_loader() built its DataLoader

    def first(self, model: nn.Module) -> Batch:
        """The first batch, made as training will make them; make_loader() is called here (once) and its
        loader only peeked at."""
        make_loader = self.hooks.make_loader
        if make_loader:
            with construction_sites(DataLoader) as built:
                self.loader = make_loader()
            self.loader_location = built.get(id(self.loader)) or def_location(make_loader)
            for batch in self.loader:
                return to_device(split_batch(batch, self._source()), self.device)
            raise UserCodeError(f"{self.path}: make_loader() gave no batches")
        return next(self.training(model, wrap=None))

    def training(self, model: nn.Module, wrap: Callable[[Iterable], Iterable] | None) -> Iterator[Batch]:
        """Batches without end: the loader epoch after epoch through `wrap` (stopping if it runs dry, a
        one-shot iterator), make_batch() called for each, or the same inferred inputs."""
        hooks, device = self.hooks, self.device
        if hooks.make_loader:
            source = self._source()
            for batch in _epochs(self.loader, wrap):
                yield to_device(split_batch(batch, source), device)
            return
        if hooks.make_batch:
            source = self._source()
            while True:
                yield to_device(split_batch(hooks.make_batch(self.batch_size), source), device)
        inputs = to_device(infer_inputs(model, self.batch_size), device)
        while True:
            yield inputs, None

    def _source(self) -> str:
        """What made the batches, as a message about a batch of the wrong shape names it."""
        if self.hooks.make_loader:
            return f"{def_location(self.hooks.make_loader)}: make_loader()"
        return f"{def_location(self.hooks.make_batch)}: make_batch({self.batch_size})"


def _epochs(loader, wrap) -> Iterator:
    while True:
        empty = True
        for batch in (wrap(loader) if wrap is not None else loader):
            empty = False
            yield batch
        if empty:
            return
