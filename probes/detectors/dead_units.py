"""dead-units: units after a ReLU that output zero for (nearly) every input, so they get no gradient and
stay dead (counted by the watcher, probes/watchers/dead_units.py, on diagnostic steps)."""
from __future__ import annotations

from ..findings import Finding
from . import thresholds as T

CODE = "dead-units"


def finding(module: str | None, cls: str, units: int, dead: list[int], values_per_unit: int, steps: int,
            width: int | None) -> Finding:
    """`dead`: the indices of the dead units among `units` after module `module` (class `cls`); `width`: the
    width of this call when one module is called at several widths (None otherwise)."""
    where = module if module else "the model"
    call = f" (where it outputs {width} units)" if width is not None else ""
    return Finding(
        code=CODE, severity="warning",
        title=f"Most units after {where}{call} are dead: they output zero for every input",
        detail=(f"{len(dead)} of {units} units after {cls} {where}{call} output exactly "
                f"zero for at least {T.DEAD_UNIT_ZERO_FRAC:.0%} of {values_per_unit:,} values each, over "
                f"{steps} training steps. A ReLU that outputs zero passes no gradient back, so "
                f"these units (and the weights feeding them) stop learning for good."),
        module=module, location=None,
        evidence={"units": units, "dead_units": len(dead), "dead_share": round(len(dead) / units, 4),
                  "dead_indices": dead[:20], "values_per_unit": values_per_unit,
                  "steps": steps, "threshold_zero_frac": T.DEAD_UNIT_ZERO_FRAC,
                  "threshold_share": T.DEAD_LAYER_SHARE},
        fix=("Look at the layer feeding this activation: a large negative bias or weight init, or a "
             "learning rate high enough to push its pre-activations negative. Use the default (He) init "
             "with zero bias, a lower learning rate, or LeakyReLU/GELU, which keep a gradient below zero."))
