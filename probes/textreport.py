"""Readable text for a check or report result (the JSON shape, rendered for a terminal)."""
from __future__ import annotations

import textwrap
from typing import Any

_WIDTH = 100
_ORDER = {"error": 0, "warning": 1, "info": 2}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def checkpoint_contents(held: dict[str, Any]) -> str:
    """What a checkpoint holds, in words: "6 tensors under 'model'; it also holds epoch, optimizer"."""
    where = f"under {held['found_under']!r}" if held.get("found_under") else "at the top level"
    also = f"; it also holds {', '.join(held['other_keys'])}" if held.get("other_keys") else ""
    return f"{_plural(int(held.get('tensors') or 0), 'tensor')} {where}{also}"


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.3g} ms"


def _listed(head: str, items: list[str], n: int = 8) -> list[str]:
    """`head` and the first n items, wrapped between items (an item is never split)."""
    items = items[:n] + ([f"and {len(items) - n} more"] if len(items) > n else [])
    lines, line = [], f"    {head}: "
    for i, item in enumerate(items):
        text = item + ("," if i < len(items) - 1 else "")
        if len(line) + len(text) > _WIDTH and line.strip():
            lines.append(line.rstrip())
            line = "      "
        line += text + " "
    return lines + [line.rstrip()]


def rank_lines(summary: dict[str, Any]) -> list[str]:
    """A torch.distributed run's ranks in a few lines, however many: logs found, the median rank's step,
    the stragglers and the ranks waiting for data named (the worst 8), never a line per rank."""
    found, world = summary["found"], summary.get("world_size") or summary["found"]
    slow = [f"rank {s['rank']} {s['vs_median']:.2f}x" for s in summary.get("stragglers", [])]
    verdict = "" if slow or found < 3 else " · no straggler"
    lines = [f"  ranks: {found} of {world} logged · median step {_ms(summary.get('median_step_s'))}{verdict}"]
    if slow:
        lines += _listed("stragglers, against the median step", slow)
    waiting = [f"rank {w['rank']} {_ms(w['median_wait_s'])}"
               + (f" ({w['share']:.0%} of its step)" if w.get("share") is not None else "")
               for w in summary.get("waiting_for_data", [])]
    if waiting:
        lines += _listed(f"waiting for data (the median rank {_ms(summary.get('median_wait_s'))} a step)", waiting)
    return lines


def render(result: dict[str, Any], title: str) -> str:
    lines = [f"ForgeScope {title}"]
    if result.get("error") and not result.get("model"):
        lines.append(f"error: {result['error']}")
        return "\n".join(lines)
    held = result.get("checkpoint")
    facts = [f"model {result.get('model') or '?'}", f"device {result.get('device') or '?'}"]
    if not title.startswith("checkpoint"):
        facts.append(_plural(int(result.get("steps") or 0), "training step"))
    if result.get("ranks"):
        facts.append(f"{result['ranks']} ranks")
    if result.get("status"):
        facts.append(result["status"])
    if result.get("loss") is not None:
        facts.append(f"last loss {result['loss']:.4g}")
    lines.append("  " + " · ".join(facts))
    if result.get("run_dir"):
        lines.append(f"  run log: {result['run_dir']}")
    if result.get("rank_summary"):
        lines += rank_lines(result["rank_summary"])
    if held is not None:            # `checkpoint`: what the file holds besides the model's weights
        lines.append(f"  checkpoint: {checkpoint_contents(held)}")
    if result.get("error"):
        lines += ["", f"error: {result['error']}"]
    findings = sorted(result.get("findings", []), key=lambda f: _ORDER.get(f["severity"], 9))
    counts = {s: sum(f["severity"] == s for f in findings) for s in _ORDER}
    if findings or not result.get("error"):     # a failed run without findings: the error says it all
        lines += ["", f"{_plural(counts['error'], 'error')} · {_plural(counts['warning'], 'warning')} · "
                      f"{counts['info']} info"]
    if not findings and not result.get("error"):
        lines.append("No problems found." if not result.get("notes") else "No problems found in what was checked.")
    for note in result.get("notes") or []:
        lines += textwrap.wrap(f"note: {note}", _WIDTH, initial_indent="  ", subsequent_indent="        ")
    for f in findings:
        lines.append("")
        lines.append(f"{f['severity'].upper():8s}{f['code']} · {f['title']}")
        where = []
        if f.get("location"):
            where.append(f"at {f['location']}")
        if f.get("module") is not None:
            where.append(f"module: {f['module'] or '(the model)'}")
        if where:
            lines.append("        " + " · ".join(where))
        for text in (f.get("detail"), f"fix: {f['fix']}" if f.get("fix") else None):
            if text:
                lines += textwrap.wrap(text, _WIDTH, initial_indent="        ", subsequent_indent="        ")
        if f.get("patch"):
            lines.append("        patch: ready (--diff shows it" + (", check --fix applies it)"
                                                                   if title.startswith("check") else ")"))
    return "\n".join(lines)
