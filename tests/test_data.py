"""app/data.py's module table and source excerpts, on real registration trees and real files."""
import time

import pytest
import torch
from torch import nn

from app.source import excerpt_text, source_excerpt, split_location
from app.tables import default_module_depth, module_table, tree_counts
from probes.tree import snapshot

NBSP = "\u00a0"


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)           # 16 + 4 values
        self.norm = nn.LayerNorm(4)         # 4 + 4 values


class Tied(nn.Module):
    """Depth 3; the head's weight is the embedding's (one tensor, two names), body.1.norm is frozen and
    body.0.fc.bias is left out of the optimizer."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)                        # 40 values
        self.body = nn.Sequential(Block(), Block())             # 2 x 28 values
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight                    # tied: 40 values, counted once
        self.register_buffer("mask", torch.ones(3, dtype=torch.bool))


def tied_tree() -> dict:
    model = Tied()
    model.body[1].norm.requires_grad_(False)
    held = [p for name, p in model.named_parameters() if p.requires_grad and name != "body.0.fc.bias"]
    return snapshot(model, [torch.optim.SGD(held, lr=0.1)])


def rows(table) -> dict[str, dict]:
    return {r["path"]: r for r in table.to_dict("records")}


def test_module_table_counts_each_subtree_in_tree_order():
    tree = tied_tree()
    table = module_table(tree)
    assert list(table["path"]) == ["", "embed", "body", "body.0", "body.0.fc", "body.0.norm", "body.1",
                                   "body.1.fc", "body.1.norm", "head"]
    assert list(table["depth"]) == [0, 1, 1, 2, 3, 3, 2, 3, 3, 1]
    assert list(table["class"][:4]) == ["Tied", "Embedding", "Sequential", "Block"]
    by = rows(table)
    # (parameters, trainable, in optimizer): recursive sums of what each module and its children own
    counts = {p: (r["parameters"], r["trainable"], r["in optimizer"]) for p, r in by.items()}
    assert counts["body.0.fc"] == (20, 20, 16)                 # its bias is in no optimizer
    assert counts["body.1.norm"] == (8, 0, 0)                  # frozen
    assert counts["body.0"] == (28, 28, 24) and counts["body.1"] == (28, 20, 20)
    assert counts["body"] == (56, 48, 44)
    assert counts["embed"] == counts["head"] == (40, 40, 40)   # the tied weight, in each of its modules
    assert counts[""] == (96, 88, 84)                          # ... and once in the model: 40 + 56
    assert counts[""][0] == tree_counts(tree)["parameters"]


def test_module_table_shows_the_tree_indented_with_each_modules_own_devices_and_dtypes():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.BatchNorm1d(2)), nn.ReLU())
    model[0].register_buffer("on_meta", torch.zeros(2, device="meta"))
    model[1][0].half()
    table = module_table(snapshot(model))
    assert list(table["module"]) == ["(model)", "└ 0", "└ 1", f"{NBSP * 3}└ 1.0", "└ 2"]
    by = rows(table)
    assert by["0"]["device"] == "cpu, meta" and by["0"]["dtype"] == "float32"
    assert by["1.0"]["dtype"] == "float16, int64"              # BatchNorm's num_batches_tracked stays int64
    assert by["1.0"]["device"] == "cpu"
    assert by[""]["device"] == by[""]["dtype"] == ""           # the Sequentials and ReLU own no tensor
    assert by["1"]["parameters"] == 4 and by[""]["parameters"] == 10


def test_module_table_cut_to_a_depth_keeps_the_recursive_counts():
    tree = tied_tree()
    table = module_table(tree, max_depth=1)
    assert list(table["path"]) == ["", "embed", "body", "head"]
    assert list(table["parameters"]) == [96, 40, 56, 40]
    assert list(module_table(tree, max_depth=0)["module"]) == ["(model)"]
    assert module_table(None).empty and module_table({"modules": []}).empty


def test_a_weight_tied_inside_one_subtree_counts_once_there():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)))
    model[1][1].weight = model[1][0].weight                    # tied within model[1]
    model[1][0].weight.requires_grad_(False)
    by = rows(module_table(snapshot(model)))
    assert by["1.0"]["parameters"] == by["1.1"]["parameters"] == 20
    assert (by["1"]["parameters"], by["1"]["trainable"]) == (24, 8)     # 16 shared + 2 biases of 4
    assert by[""]["parameters"] == 44


def test_module_table_of_a_large_tree_is_one_pass():
    """20,000 modules and 40,000 tensors: rescanning the tensors per module would take minutes."""
    n = 10_000
    modules = [{"path": "", "class": "Big"}, {"path": "blocks", "class": "ModuleList"}]
    tensors = []
    for i in range(n):
        modules += [{"path": f"blocks.{i}", "class": "Block"}, {"path": f"blocks.{i}.fc", "class": "Linear"}]
        for name in ("weight", "bias"):
            tensors.append({"name": f"blocks.{i}.fc.{name}", "module": f"blocks.{i}.fc", "kind": "parameter",
                            "numel": 3, "requires_grad": True, "optimizer": 0, "dtype": "float32", "device": "cpu"})
    tree = {"modules": modules, "tensors": tensors}
    started = time.perf_counter()
    table = module_table(tree)
    took = time.perf_counter() - started
    assert len(table) == 2 * n + 2 and table["parameters"].iloc[0] == 6 * n
    assert took < 5, took
    assert default_module_depth(table) == 2                    # 10,002 rows to level 2 is too many; 2 at least
    assert default_module_depth(module_table(tied_tree())) == 3  # a small model opens fully


# -- source excerpts ---------------------------------------------------------------------------------------
@pytest.fixture
def source(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("".join(f"x{i} = {i}\n" for i in range(1, 11)))
    return path


def test_source_excerpt_reads_the_line_and_two_either_side(source):
    assert source_excerpt(f"{source}:5") == (3, ["x3 = 3", "x4 = 4", "x5 = 5", "x6 = 6", "x7 = 7"])
    assert source_excerpt(f"{source}:1") == (1, ["x1 = 1", "x2 = 2", "x3 = 3"])       # nothing before line 1
    assert source_excerpt(f"{source}:10") == (8, ["x8 = 8", "x9 = 9", "x10 = 10"])    # the file's last line
    assert source_excerpt(f"{source}:6 in forward") == (4, ["x4 = 4", "x5 = 5", "x6 = 6", "x7 = 7", "x8 = 8"])
    assert source_excerpt(f"{source}:5", context=0) == (5, ["x5 = 5"])


def test_source_excerpt_is_none_for_anything_it_cannot_show(source, tmp_path):
    assert source_excerpt(f"{source}:11") is None and source_excerpt(f"{source}:0") is None
    text = tmp_path / "notes.txt"
    text.write_text(source.read_text())
    assert source_excerpt(f"{text}:3") is None                  # not a .py file
    assert source_excerpt(f"{tmp_path / 'gone.py'}:3") is None
    assert source_excerpt(str(source)) is None and source_excerpt(f"{source}:x") is None
    assert source_excerpt(None) is None and source_excerpt("") is None
    (tmp_path / "pkg.py").mkdir()
    assert source_excerpt(f"{tmp_path / 'pkg.py'}:1") is None   # a folder
    big = tmp_path / "big.py"
    big.write_text("x = 1\n" * 400_000)                         # 2.4 MB
    assert source_excerpt(f"{big}:1") is None
    assert source_excerpt(f"{source}\0:1") is None


def test_source_excerpt_parses_windows_paths_and_relative_ones(tmp_path, monkeypatch):
    assert split_location("C:\\x\\y.py:3") == ("C:\\x\\y.py", 3)
    assert split_location("C:\\x\\y.py:3 in forward") == ("C:\\x\\y.py", 3)
    assert split_location("C:\\x\\y.py") is None and split_location("model.pt") is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "C:\\x\\y.py").write_text("a = 1\nb = 2\nc = 3\n")    # one file of that name, here
    assert source_excerpt("C:\\x\\y.py:3") == (1, ["a = 1", "b = 2", "c = 3"])
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.py").write_text("one = 1\ntwo = 2\n")
    assert source_excerpt("sub/m.py:2") == (1, ["one = 1", "two = 2"])


def test_source_excerpt_decodes_as_python_does_and_rereads_a_changed_file(tmp_path):
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\n")
    assert source_excerpt(f"{latin}:2") == (1, ["# -*- coding: latin-1 -*-", "name = 'été'"])
    broken = tmp_path / "broken.py"
    broken.write_bytes(b"a = 1\r\nb = '\xff'\r\nc = 3\x0c\r\n")  # CRLF, a byte that is no UTF-8, a form feed
    assert source_excerpt(f"{broken}:2") == (1, ["a = 1", "b = '\ufffd'", "c = 3\x0c"])
    path = tmp_path / "edited.py"
    path.write_text("old = 1\n")
    assert source_excerpt(f"{path}:1") == (1, ["old = 1"])
    path.write_text("new = 22\n")
    assert source_excerpt(f"{path}:1") == (1, ["new = 22"])


def test_excerpt_text_numbers_the_lines_and_marks_the_findings(source):
    assert excerpt_text(f"{source}:9") == "\n".join(["   7  x7 = 7", "   8  x8 = 8", "→  9  x9 = 9",
                                                     "  10  x10 = 10"])
    assert excerpt_text(f"{source}:99") is None
