"""The registration tree and the registration checks, on models built in the test."""
import inspect

import torch
from torch import nn

from probes.detectors import check_tree
from probes.tree import describe_module, is_initialised, named_modules, snapshot


def line_of(cls, text):
    """Absolute line number of the first source line of cls containing text."""
    lines, first = inspect.getsourcelines(cls)
    return first + next(i for i, line in enumerate(lines) if text in line)


class Containers(nn.Module):
    def __init__(self):
        super().__init__()
        self.as_list = [nn.Linear(4, 4), nn.ReLU()]
        self.as_dict = {"a": nn.Linear(4, 2)}
        self.as_tuple = (nn.Linear(4, 4),)
        self.as_set = {nn.Linear(4, 4)}
        self.nested = {"deep": [nn.Linear(4, 4)]}
        self.scale = torch.ones(4, requires_grad=True)
        self.plist = [nn.Parameter(torch.zeros(4))]
        self.out = nn.Linear(4, 2)


class Clean(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4)])
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2)})
        self.scale = nn.Parameter(torch.ones(4))
        self.plist = nn.ParameterList([nn.Parameter(torch.zeros(4))])
        self.register_buffer("mask", torch.ones(4))
        self.const = torch.ones(4)                  # a plain tensor without grad: not this bug
        self.cfg = {"dims": [4, 4], "act": "relu"}  # configuration, not modules
        self.act_cls = nn.ReLU                      # a class, not an instance
        self.sizes = (4, 4)


def test_unregistered_containers_are_found_with_their_lines():
    tree = snapshot(Containers())
    by_path = {u["path"]: u for u in tree["unregistered"]}
    assert set(by_path) == {"as_list", "as_dict", "as_tuple", "as_set", "nested", "scale", "plist"}
    assert by_path["as_list"]["count"] == 2 and by_path["as_list"]["classes"] == ["Linear", "ReLU"]
    assert by_path["as_list"]["numel"] == 20
    assert by_path["nested"]["items"] == ["nested['deep'][0]"]
    assert by_path["scale"]["kind"] == "parameter" and by_path["scale"]["container"] == "tensor"
    assert by_path["plist"]["kind"] == "parameter" and by_path["plist"]["container"] == "list"
    for path, item in by_path.items():
        assert item["location"].endswith(f":{line_of(Containers, f'self.{path} =')}"), path


class DropPath(nn.Module):
    """Stochastic depth: no weights, but it acts by the mode (eval() must reach it)."""
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        return x * (torch.rand(x.shape[0], 1) > self.p) / (1 - self.p)


class Rotary(nn.Module):
    """A stateless function wrapper, as transformers' kernel hub keeps them in a private dict."""
    def forward(self, q, k):
        return q.flip(-1), k.flip(-1)


class Stateless(nn.Module):
    def __init__(self):
        super().__init__()
        self._kernel_funcs = {"rotary": Rotary()}            # no weights, no buffers, no mode: harmless
        self.acts = [nn.ReLU(), nn.GELU()]
        self.drops = [DropPath(0.1), DropPath(0.2)]          # the bug: eval() never switches them off
        self.dropouts = [nn.Dropout(0.1)]                    # the same for nn.Dropout
        self.noisy = [nn.RReLU()]                            # and a random slope while training


def test_an_unregistered_module_matters_by_its_state_or_its_mode():
    by_path = {u["path"]: u for u in snapshot(Stateless())["unregistered"]}
    assert set(by_path) == {"drops", "dropouts", "noisy"}


def test_clean_model_has_nothing_unregistered_and_no_findings():
    tree = snapshot(Clean())
    assert tree["unregistered"] == [] and tree["uninitialised"] == []
    assert check_tree(tree) == []
    kinds = {t["name"]: t["kind"] for t in tree["tensors"]}
    assert kinds["mask"] == "buffer" and kinds["plist.0"] == "parameter"


def test_registration_findings_name_code_module_line_and_fix():
    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [nn.Linear(4, 4), nn.Linear(4, 4)]

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()
            self.gain = torch.zeros(3, requires_grad=True)

    findings = {f.code: f for f in check_tree(snapshot(Outer()))}
    assert set(findings) == {"unregistered-module", "unregistered-parameter"}
    mod = findings["unregistered-module"]
    assert mod.severity == "error" and mod.module == "inner"
    assert mod.location.endswith(f":{line_of(Inner, 'self.blocks =')}")
    assert "nn.ModuleList" in mod.fix and mod.evidence["count"] == 2 and mod.evidence["numel"] == 40
    par = findings["unregistered-parameter"]
    assert par.module == "" and "nn.Parameter" in par.fix and par.evidence["numel"] == 3


def test_a_module_without_super_init_is_walked_and_reported():
    class NoSuper(nn.Module):
        def __init__(self):
            self.k = 3

        def forward(self, x):
            return x * self.k

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.broken = NoSuper()

    model = Holder()
    assert [p for p, _ in named_modules(model)] == ["", "fc", "broken"]
    assert not is_initialised(model.broken)
    tree = snapshot(model)
    [finding] = check_tree(tree)
    assert finding.code == "missing-super-init" and finding.module == "broken"
    assert finding.location.endswith(f":{NoSuper.__init__.__code__.co_firstlineno}")
    assert describe_module(model.broken) == "NoSuper"


def test_module_labels_and_user_class_locations():
    assert describe_module(nn.Linear(64, 4)) == "Linear 64→4"
    assert describe_module(nn.Conv2d(3, 8, 3)) == "Conv2d 3→8"
    assert describe_module(nn.ReLU()) == "ReLU"
    tree = snapshot(Clean())
    root = tree["modules"][0]
    assert root["path"] == "" and root["location"].endswith(f":{line_of(Clean, 'class Clean')}")
    assert next(m for m in tree["modules"] if m["path"] == "layers.0")["location"] is None   # torch's own


def test_optimizer_membership_and_optimizer_only_tensors():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    stray = nn.Parameter(torch.zeros(5))
    opt_a = torch.optim.SGD(model[0].parameters(), lr=0.1)
    opt_b = torch.optim.SGD([{"params": [model[1].weight]}, {"params": [model[1].bias, stray], "lr": 0.01}], lr=0.1)
    tree = snapshot(model, [opt_a, opt_b])
    slots = {t["name"]: (t["optimizer"], t["param_group"]) for t in tree["tensors"]}
    assert slots == {"0.weight": (0, 0), "0.bias": (0, 0), "1.weight": (1, 0), "1.bias": (1, 1)}
    assert tree["optimizer_only"] == [{"optimizer": 1, "param_group": 1, "shape": [5]}]


class MetaBuilt(nn.Module):
    """Built under torch.device("meta") and moved with to_empty(): plain tensor attributes stay behind."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.table = torch.zeros(8, 4)              # a plain attribute: to_empty() does not move it
        self.register_buffer("mask", torch.ones(4))
        self.steps = torch.tensor(0)                # 0-dim, but on meta: still unusable
        self.inner = Holder()


class Holder(nn.Module):
    """No parameters or buffers of its own: measured against the model's device."""

    def __init__(self):
        super().__init__()
        self.cache = torch.zeros(2)


def test_plain_tensors_left_on_another_device_are_recorded_with_their_lines():
    with torch.device("meta"):
        model = MetaBuilt()
    model.to_empty(device="cpu")
    tree = snapshot(model)
    strays = {s["name"]: s for s in tree["stray_tensors"]}
    assert set(strays) == {"table", "steps", "inner.cache"}
    table = strays["table"]
    assert (table["module"], table["attribute"], table["device"], table["home"]) == ("", "table", "meta", "cpu")
    assert table["shape"] == [8, 4] and table["dtype"] == "float32"
    assert table["location"].endswith(f":{line_of(MetaBuilt, 'self.table =')}")
    assert strays["inner.cache"]["module"] == "inner" and strays["inner.cache"]["home"] == "cpu"
    assert strays["inner.cache"]["location"].endswith(f":{line_of(Holder, 'self.cache =')}")
    # registered tensors are where they belong, and no registration check mistakes these for parameters
    assert {t["device"] for t in tree["tensors"]} == {"cpu"} and tree["unregistered"] == []
    assert check_tree(tree) == []


def test_ordinary_models_record_no_stray_tensors():
    assert snapshot(Clean())["stray_tensors"] == []             # self.const: a CPU tensor on a CPU model
    assert snapshot(MetaBuilt())["stray_tensors"] == []
    assert snapshot(nn.ReLU())["stray_tensors"] == []           # nothing registered: no device to compare

    class Scalar(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.temperature = torch.tensor(0.07)          # 0-dim CPU: mixes with any device
            self.table = torch.zeros(3)

    with torch.device("meta"):
        model = Scalar()
    model.temperature, model.table = torch.tensor(0.07), torch.zeros(3)    # CPU tensors on a meta model
    assert [s["name"] for s in snapshot(model)["stray_tensors"]] == ["table"]
