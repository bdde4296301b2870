"""Patches (probes/patches): each mechanical fix applied to its bug sample gives a file whose check no longer
reports the code and behaves as the fixed twin does; the rest of the file stays byte for byte; a change that
is not certain is not offered.

The checks are the worker's own, in children forked from the test process (tests/warm.py); the command
line's --diff and --fix are tested end to end in tests/test_cli.py.
"""
import shutil
from pathlib import Path

import pytest

import warm
from probes.patches import _patchers, apply, apply_in_turn, codes, patch_for
from probes.patches._cst import NotCertain, Source
from probes.runlog import RunReader

ROOT = Path(__file__).resolve().parent.parent
MECHANICAL = ["unregistered_module", "unregistered_parameter", "layer_created_in_forward", "missing_super_init",
              "forward_called_directly", "memory_growth", "eval_mode_missing", "train_mode_off",
              "loss_input_mismatch", "gradients_accumulate", "optimizer_not_stepping"]


def test_every_mechanical_code_has_a_sample_here():
    from probes.catalog import BY_CODE
    covered = {BY_CODE[c].samples[0].removeprefix("sample_models/").removesuffix(".py") for c in codes()}
    assert covered == set(MECHANICAL)


def _reported(result: dict) -> list[str]:
    return sorted(f["code"] for f in result["findings"] if f["severity"] != "info")


def _trainable(run_dir: str) -> tuple[int, int]:
    """(parameters the optimizer holds, their elements), read back from the run log's registration tree."""
    with RunReader(Path(run_dir) / "run.db") as reader:
        tree = reader.tree()
    held = [t for t in tree["tensors"] if t.get("kind") == "parameter" and t.get("optimizer") is not None]
    return len(held), sum(t["numel"] for t in held)


@pytest.mark.parametrize("name", MECHANICAL)
def test_the_patch_fixes_the_sample_as_its_twin_does(name, tmp_path):
    copy = tmp_path / f"{name}.py"
    shutil.copy(ROOT / "sample_models" / f"{name}.py", copy)
    steps = 10 if name == "memory_growth" else 5     # the kept graphs are seen from step 5 on
    before = warm.check(copy, tmp_path / "before", steps=steps)
    fixed = [f["code"] for f, _ in apply_in_turn(before["findings"])]
    assert fixed and set(fixed) <= set(_reported(before)), before["findings"]
    after = warm.check(copy, tmp_path / "after", steps=steps)
    twin = warm.check(ROOT / "sample_models" / f"{name}_fixed.py", tmp_path / "twin", steps=steps)
    assert after["error"] is None, after["error"]
    assert _reported(after) == _reported(twin) == [], after["findings"]
    assert _trainable(after["run_dir"]) == _trainable(twin["run_dir"])
    assert not Path(f"{copy}.bak").exists()


# -- byte for byte ------------------------------------------------------------------------------------
ODD = (b"import torch\r\nfrom torch import nn   # the usual\r\n\r\n\r\nclass  Odd( nn.Module ):\r\n"
       b"    \"\"\"Odd spacing, comments, CRLF, no newline at the end.\"\"\"\r\n"
       b"    def __init__(self,width = 8):\r\n"
       b"        super( ).__init__()\r\n"
       b"        # the layers, kept in a list\r\n"
       b"        self.hidden = [ nn.Linear(width,width) ,   # first\r\n"
       b"                        nn.Linear( width, width ) ]   # second\r\n"
       b"        self.out=nn.Linear(width , 2)\t# tab before me\r\n\r\n"
       b"    def forward( self, x ):\r\n"
       b"        for layer in self.hidden :   x = layer(x)\r\n"
       b"        return self.out( x )")


def test_everything_outside_the_changed_lines_is_byte_identical(tmp_path):
    path = tmp_path / "odd.py"
    path.write_bytes(ODD)
    patch = patch_for({"code": "unregistered-module", "location": f"{path}:10",
                       "evidence": {"attribute": "hidden", "container": "list", "count": 2,
                                    "items": ["hidden[0]", "hidden[1]"]}})
    assert patch is not None
    want = ODD.replace(b"self.hidden = [ nn.Linear(width,width) ,   # first\r\n"
                       b"                        nn.Linear( width, width ) ]   # second",
                       b"self.hidden = nn.ModuleList([ nn.Linear(width,width) ,   # first\r\n"
                       b"                        nn.Linear( width, width ) ])   # second")
    assert patch.after == want
    assert "-        self.hidden = [ nn.Linear(width,width) ,   # first" in patch.diff
    assert patch.diff.endswith("\\ No newline at end of file\n") is False      # the last line is not changed


def test_inserted_lines_take_the_files_newlines_and_indentation(tmp_path):
    path = tmp_path / "step.py"
    source = (b"def train_step(model, batch, optimizer, loss_fn):\r\n"
              b"\tx, y = batch\r\n"
              b"\tloss = loss_fn(model(x), y)  # forward\r\n"
              b"\tloss.backward()\r\n"
              b"\toptimizer.step()\r\n"
              b"\treturn loss")
    path.write_bytes(source)
    patch = patch_for({"code": "gradients-accumulate", "location": f"{path}:4",
                       "evidence": {"optimizer": 0, "optimizer_class": "SGD"}})
    assert patch is not None
    assert patch.after == source.replace(b"\tloss.backward()", b"\toptimizer.zero_grad()\r\n\tloss.backward()")


def test_a_file_in_another_encoding_keeps_its_bytes(tmp_path):
    path = tmp_path / "latin.py"
    source = ("# -*- coding: latin-1 -*-\n# caf\u00e9 r\u00e9seau\nimport torch\n\n\n"
              "def train_step(model, batch, optimizer, loss_fn):\n"
              "    loss = loss_fn(model.forward(batch[0]), batch[1])   # \u00e9tape\n"
              "    return loss\n").encode("latin-1")
    path.write_bytes(source)
    patch = patch_for({"code": "forward-called-directly", "location": f"{path}:7",
                       "evidence": {"class": "MLP", "called": "model.forward"}})
    assert patch is not None and patch.after == source.replace(b"model.forward(batch[0])", b"model(batch[0])")
    assert "\u00e9tape" in patch.diff


# -- not certain: no patch ----------------------------------------------------------------------------
UNCERTAIN = {
    # ModuleDict keys must be strings: int keys would break every lookup
    "int keys": ("unregistered-module", 5, {"attribute": "heads", "container": "dict", "count": 2,
                                            "items": ["heads[0]", "heads[1]"]},
                 "from torch import nn\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                 "        self.heads = {}\n        for i in range(2):\n            self.heads[i] = nn.Linear(2, 2)\n"),
    # a list of [layer, activation] pairs: an nn.ModuleList of lists cannot be built
    "nested lists": ("unregistered-module", 5, {"attribute": "pairs", "container": "list", "count": 2,
                                                "items": ["pairs[0][0]", "pairs[0][1]"]},
                     "from torch import nn\nclass M(nn.Module):\n    def __init__(self):\n"
                     "        super().__init__()\n        self.pairs = [[nn.Linear(2, 2), nn.ReLU()]]\n"),
    # a function beside the layer: nn.ModuleList would raise on it
    "a function in the list": ("unregistered-module", 6, {"attribute": "ops", "container": "list", "count": 1,
                                                         "items": ["ops[0]"]},
                               "from torch import nn\nimport torch.nn.functional as F\nclass M(nn.Module):\n"
                               "    def __init__(self):\n        super().__init__()\n"
                               "        self.ops = [nn.Linear(4, 4), F.relu]\n"),
    # step() every k batches: accumulation on purpose, with zero_grad() where the user put it
    "accumulation": ("gradients-accumulate", 4, {"optimizer": 0, "optimizer_class": "SGD"},
                     "def step(model, batch, optimizer, i):\n    x, y = batch\n    loss = model(x).sum()\n"
                     "    loss.backward()\n    if i % 4 == 0:\n        optimizer.step()\n"),
    # the layer's size comes from the input: it cannot move to __init__
    "sized by the input": ("layer-created-in-forward", 6, {"class": "Linear", "registered_as": None},
                           "from torch import nn\nclass M(nn.Module):\n    def __init__(self):\n"
                           "        super().__init__()\n    def forward(self, x):\n"
                           "        return nn.Linear(x.shape[1], 2)(x)\n"),
    # one layer per loop turn: one shared layer would be another model
    "built in a loop": ("layer-created-in-forward", 7, {"class": "Linear", "registered_as": None},
                        "from torch import nn\nclass M(nn.Module):\n    def __init__(self):\n"
                        "        super().__init__()\n    def forward(self, x):\n        for _ in range(3):\n"
                        "            x = nn.Linear(4, 4)(x)\n        return x\n"),
    # two models in the file end in a softmax: which one feeds the loss is not known
    "two softmax models": ("loss-input-mismatch", 9, {"loss": "cross_entropy", "input_came_from": "softmax",
                                                      "expected": "logits"},
                           "import torch\nclass A(torch.nn.Module):\n    def forward(self, x):\n"
                           "        return torch.softmax(x, 1)\nclass B(torch.nn.Module):\n"
                           "    def forward(self, x):\n        return x.softmax(1)\n"
                           "def loss_fn(p, y):\n    return torch.nn.functional.cross_entropy(p, y)\n"),
    # self.softmax(x) calls a submodule that is not a softmax: nothing to take out
    "a submodule named softmax": ("loss-input-mismatch", 8, {"loss": "cross_entropy",
                                                            "input_came_from": "softmax", "expected": "logits"},
                                  "from torch import nn\nclass A(nn.Module):\n    def __init__(self):\n"
                                  "        super().__init__()\n        self.softmax = nn.Linear(2, 2)\n"
                                  "    def forward(self, x):\n        return self.softmax(x)\n"
                                  "def loss_fn(p, y):\n    return nn.functional.cross_entropy(p, y)\n"),
    # the validation returns from inside no_grad: a model.train() after it would never run
    "returns inside": ("eval-mode-missing", 4, {"context": "torch.no_grad()", "modules": ["drop"]},
                       "import torch\ndef evaluate(model, x):\n    with torch.no_grad():\n"
                       "        return model(x)\n"),
    # the model's probabilities are thresholded elsewhere: without its sigmoid, `> 0.5` would mean another thing
    "thresholded": ("loss-input-mismatch", 10, {"loss": "binary_cross_entropy_with_logits",
                                               "input_came_from": "sigmoid", "expected": "logits"},
                    "import torch\nfrom torch import nn\nclass A(nn.Module):\n    def __init__(self):\n"
                    "        super().__init__()\n        self.fc = nn.Linear(2, 1)\n    def forward(self, x):\n"
                    "        return torch.sigmoid(self.fc(x))\ndef loss_fn(p, y):\n"
                    "    return nn.functional.binary_cross_entropy_with_logits(p, y)\n"
                    "def eval_step(model, batch):\n    return (model(batch[0]) > 0.5).float().mean()\n"),
    # the kept losses are backpropagated together later: kept on purpose
    "backpropagated later": ("memory-growth", 4, {"kept_steps": [0, 1], "kinds": ["loss"]},
                             "losses = []\ndef step(model, x, i, optimizer):\n    loss = model(x).sum()\n"
                             "    losses.append(loss)\n    if i % 4 == 3:\n"
                             "        torch.stack(losses).mean().backward()\n        optimizer.step()\n"),
    # a base class from another file may already have the attribute name the layer would take
    "foreign base": ("layer-created-in-forward", 6, {"class": "Linear", "registered_as": None},
                     "from torch import nn\nfrom mylib import Base\nclass M(Base):\n    def __init__(self):\n"
                     "        super().__init__()\n    def forward(self, x):\n        return nn.Linear(4, 2)(x)\n"),
    # a hand-written update has no optimizer to zero
    "hand-written": ("gradients-accumulate", 3, {"optimizer": -1, "optimizer_class": "the hand-written update"},
                     "def step(model, x, probe):\n    loss = model(x).sum()\n    loss.backward()\n"
                     "    probe.step()\n"),
}


@pytest.mark.parametrize("case", sorted(UNCERTAIN))
def test_no_patch_where_the_change_is_not_certain(case, tmp_path):
    code, line, evidence, source = UNCERTAIN[case]
    path = tmp_path / "m.py"
    path.write_text(source)
    finding = {"code": code, "location": f"{path}:{line}", "evidence": evidence}
    with pytest.raises(NotCertain):         # refused for a reason, not by a failure of ours
        _patchers()[code](Source(source.encode()), finding, line)
    assert patch_for(finding) is None


def test_zero_grad_goes_before_the_first_backward_of_the_step(tmp_path):
    """Two losses backpropagated into one step: zero_grad() between them would drop the first's gradients."""
    path = tmp_path / "two.py"
    source = ("def step(model, batch, optimizer):\n    x, y = batch\n    model(x).sum().backward()\n"
              "    model(y).sum().backward()\n    optimizer.step()\n")
    path.write_text(source)
    patch = patch_for({"code": "gradients-accumulate", "location": f"{path}:4",
                       "evidence": {"optimizer": 0, "optimizer_class": "SGD"}})
    assert patch.after.decode() == source.replace("    model(x)", "    optimizer.zero_grad()\n    model(x)", 1)


def test_a_file_that_does_not_parse_or_moved_on_gets_no_patch(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def step(model, batch:\n")
    assert patch_for({"code": "forward-called-directly", "location": f"{path}:1",
                      "evidence": {"called": "model.forward"}}) is None
    path.write_text("def step(model, x):\n    return model(x)\n")       # already fixed: nothing to change
    assert patch_for({"code": "forward-called-directly", "location": f"{path}:2",
                      "evidence": {"called": "model.forward"}}) is None
    assert patch_for({"code": "forward-called-directly", "location": f"{tmp_path}/gone.py:2",
                      "evidence": {"called": "model.forward"}}) is None


def test_apply_refuses_a_file_changed_since_and_keeps_a_backup(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def step(model, x):\n    return model.forward(x)\n")
    finding = {"code": "forward-called-directly", "location": f"{path}:2", "evidence": {"called": "model.forward"}}
    patch = patch_for(finding)
    path.write_text("def step(model, x):\n    return model.forward(x)  # edited\n")
    with pytest.raises(ValueError, match="changed since"):
        apply(patch)
    patch = patch_for(finding)
    backup = apply(patch)
    assert backup.read_text().endswith("# edited\n") and path.read_text().endswith("return model(x)  # edited\n")


FORMS = {
    # super(Cls) without self: an unbound super whose __init__ never reaches nn.Module's
    "unbound super": ("missing-super-init", 4, {"class": "M"},
                      "from torch import nn\nclass M(nn.Module):\n    def __init__(self):\n"
                      "        super(M).__init__()\n        self.fc = nn.Linear(2, 2)\n",
                      "        super().__init__()\n"),
    # training=True written out: the dropout stays on in eval mode
    "training=True": ("eval-mode-missing", 4, {"functional": True, "p": 0.1},
                      "import torch.nn.functional as F\nclass M(object):\n    def forward(self, x):\n"
                      "        return F.dropout2d(x, 0.1, training=True)\n",
                      "        return F.dropout2d(x, 0.1, training=self.training)\n"),
    # a forward's outputs summed into two running totals: both kept the graphs, both detached
    "two totals": ("memory-growth", 4, {"kept_steps": [0, 1], "kinds": ["loss", "model output"]},
                   "def epoch(model, batches, optimizer):\n    e = a = 0.0\n    for x in batches:\n"
                   "        out = model(x)\n        loss = out.sum()\n        loss.backward()\n        optimizer.step()\n"
                   "        e += loss / len(batches)\n        a += out.argmax(1).float().mean()\n",
                   "        e += (loss / len(batches)).detach()\n        a += out.argmax(1).float().mean().detach()\n"),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_more_forms_of_the_bugs(form, tmp_path):
    code, line, evidence, source, fixed = FORMS[form]
    path = tmp_path / "m.py"
    path.write_text(source)
    patch = patch_for({"code": code, "location": f"{path}:{line}", "evidence": evidence})
    assert patch is not None and fixed in patch.after.decode(), patch and patch.diff


def test_a_changed_last_line_without_a_newline_keeps_none_and_the_diff_says_so(tmp_path):
    path = tmp_path / "m.py"
    path.write_bytes(b"def step(model, x):\n    return model.forward(x)")
    patch = patch_for({"code": "forward-called-directly", "location": f"{path}:2",
                       "evidence": {"called": "model.forward"}})
    assert patch.after == b"def step(model, x):\n    return model(x)"
    assert patch.diff.endswith("-    return model.forward(x)\n\\ No newline at end of file\n"
                               "+    return model(x)\n\\ No newline at end of file\n")
