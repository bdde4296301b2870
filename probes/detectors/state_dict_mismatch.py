"""state-dict-mismatch: `checkpoint` only: the checkpoint does not load into the model (keys, shapes, a
`module.` prefix), or would need pickled code to load; a warning when only dtypes differ. probes/checkpoint.py
reads the file and compares it with the model's state_dict(); the findings are written here."""
from __future__ import annotations

from ..findings import Finding

CODE = "state-dict-mismatch"
LISTED = 20                                         # keys named in a finding's evidence, per kind


def refused(what: str, reason: str, path: str) -> Finding:
    """torch.load(weights_only=True) refused the file: it needs `what` (a class or function) to load."""
    return Finding(
        code=CODE, severity="error",
        title=f"The checkpoint needs {what or 'pickled Python code'} to load: refused, not run",
        detail=("This file is not only tensors: loading it would unpickle and run Python code "
                f"({what or 'a custom object'}), which can do anything — so it was not loaded. Usually it "
                "is a whole model saved with torch.save(model) instead of its state_dict, which also breaks "
                "as soon as the class or its file moves."),
        module=None, location=path,
        evidence={"refused": what, "reason": reason},
        fix=("Save the weights, not the object: torch.save(model.state_dict(), path), and load with "
             "model.load_state_dict(torch.load(path, weights_only=True)). For a file you trust and made "
             "yourself, load it once with weights_only=False and save its state_dict()."))


def no_state_dict(kinds: str, holds: list[str], path: str) -> Finding:
    """The checkpoint (holding `kinds`; its keys `holds`) has no mapping of names to tensors."""
    return Finding(code=CODE, severity="error", title="No state_dict in the checkpoint",
                   detail=f"The checkpoint holds {kinds}, and no mapping of names to tensors.",
                   module=None, location=path, evidence={"holds": holds[:LISTED]},
                   fix="Save model.state_dict() (alone, or under a key such as 'model').")


def mismatch(path: str, key: str, others: list[str], prefix: str | None, missing: list[str],
             unexpected: list[str], shapes: list[dict], dtypes: list[dict]) -> Finding:
    """The model's tensors, found under `key` ('' at the top, beside the checkpoint's `others` keys), differ
    from the model's state_dict: a wrapper's `prefix` on every key, `missing` and `unexpected` keys, `shapes`
    and `dtypes` ({"key", "model", "checkpoint"}). An error unless only dtypes differ."""
    load = f"checkpoint[{key!r}]" if key else "checkpoint"
    steps, parts = [], []
    if key:
        steps.append(f"the weights are under {key!r}: model.load_state_dict({load})")
    if prefix:
        parts.append(f"every key starts with {prefix!r}")
        steps.append(f"drop the prefix: state = {{k.removeprefix({prefix!r}): v for k, v in {load}.items()}} "
                     f"(or save model.module.state_dict() when the model is wrapped)")
    if missing:
        parts.append(f"{len(missing)} key(s) of the model are missing")
    if unexpected:
        parts.append(f"{len(unexpected)} key(s) are not in the model")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es)")
        steps.append("build the model with the configuration the checkpoint was trained with (sizes, vocabulary, "
                     "number of classes), or drop those keys and load with strict=False to fine-tune")
    if dtypes:
        parts.append(f"{len(dtypes)} dtype difference(s)")
    if (missing or unexpected) and not shapes:
        steps.append("check the model's version against the checkpoint's; strict=False loads the rest, but the "
                     "missing ones stay at their random initial values")
    fatal = bool(missing or unexpected or shapes)
    title = ("The checkpoint does not load into this model: " if fatal or prefix else
             "The checkpoint loads, with dtype differences: ") + "; ".join(parts)
    return Finding(
        code=CODE, severity="error" if fatal or prefix else "warning", title=title,
        detail=("model.load_state_dict() would fail (strict) or leave weights untrained (strict=False). "
                if fatal or prefix else
                "load_state_dict copies each tensor into the model's own dtype, so it loads: a value saved in "
                "a wider type is rounded, one saved in a narrower type keeps the precision it lost. ")
        + (f"The model's weights were found under {key!r}; the file also holds "
           f"{', '.join(others[:8]) or 'nothing else'}." if key else ""),
        module=None, location=path,
        evidence={"missing": missing[:LISTED], "unexpected": unexpected[:LISTED], "shape": shapes[:LISTED],
                  "dtype": dtypes[:LISTED], "prefix": prefix, "found_under": key or None,
                  "other_keys": others[:LISTED], "counts": {"missing": len(missing), "unexpected": len(unexpected),
                                                            "shape": len(shapes), "dtype": len(dtypes)}},
        fix=("; ".join(steps) if steps else
             "Nothing to do if the model's dtype is the one you train in; to run in the checkpoint's dtype, cast "
             "the model after loading (e.g. model.half())."))
