"""HTML panels for a Trace: summary, node inspector, allocator decision, PRM score table.

Every model-originated string is escaped with html.escape; the markup around it is ours.
"""

from __future__ import annotations

import json
import math
from typing import Callable, Mapping, Sequence

from ..trace import FOOLED_HIGH, PRUNED, Trace, fooled_kind, truth_summary
from .figures import esc, extra_number, latex_to_text, score_color, si_split, strategy_label, verifier_words

_STYLE = "font-family: system-ui, sans-serif; font-size: 14px; line-height: 1.4;"
_TABLE = "border-collapse: collapse; margin: 4px 0;"
_TD = "border: 1px solid #ddd; padding: 3px 8px; vertical-align: top;"


def _pre(text: str) -> str:
    return f'<div style="white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 13px;">{esc(text)}</div>'


def _maths(text: str) -> str:
    """Model text with its LaTeX as plain maths (figures.latex_to_text), escaped; the raw text on hover."""
    shown = latex_to_text(text)
    title = f' title="{esc(text)}"' if shown != (text or "").strip() else ""
    return f'<div style="white-space: pre-wrap; font-size: 14px;"{title}>{esc(shown)}</div>'


def _num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def _si(x: float) -> str:
    v, unit = si_split(x)
    return f"{v:.2f} {unit}" if unit else f"{x:.0f}"


def _swatch(score: float | None) -> str:
    return (f'<span style="display:inline-block;width:0.9em;height:0.9em;border-radius:2px;'
            f'background:{score_color(score)};vertical-align:middle;margin-right:4px"></span>')


def _verdict(correct: bool | None) -> str:
    if correct is None:
        return "unknown (no gold answer)"
    return "✓ correct" if correct else "✗ wrong"


# ----- summary ------------------------------------------------------------------------------
def _count(x) -> str:
    """A token count with thousands separators; anything else (an edited trace) escaped as it is."""
    return f"{x:,.0f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else esc(x)


def summary_html(trace: Trace | None) -> str:
    if trace is None:
        return f'<div style="{_STYLE}"><i>No run yet: pick a problem and press Run, or upload a trace.</i></div>'
    status_words = {"running": "running…", "done": "done", "cancelled": "stopped: partial tree kept",
                    "error": "failed"}
    rows = [
        ("status", esc(status_words.get(trace.status, trace.status))),
        ("strategy", esc(trace.strategy)),
        ("question", f'<div style="max-height:6em;overflow:auto">{esc(trace.question)}</div>'),
        ("policy · verifier", esc(trace.policy) + " · " + esc(verifier_words(trace.verifier))),
        ("answer", "<b>" + esc(trace.final_answer if trace.final_answer is not None else "–") + "</b>"),
        ("gold", esc(trace.gold if trace.gold is not None else "–")),
        ("correct", esc(_verdict(trace.correct)) if trace.final_answer is not None else "–"),
        ("rounds · steps", f"{trace.rounds} · {len(trace.nodes) - 1}"),
        *([("precision", esc(" · ".join(f"{k}: {v}" for k, v in trace.precision.items())))] if trace.precision else []),
        ("search time", f"{trace.seconds:.1f} s" + (f" (+ {trace.load_seconds:.1f} s loading)" if trace.load_seconds >= 0.05 else "")
         + _shared_cpu_words(trace.cpu_share)),
    ]
    stop = trace.root.extra.get("early_stop") if isinstance(trace.root.extra, dict) else None
    if isinstance(stop, dict):
        rows.append(("compute spent", f"<b>{esc(stop.get('spent'))} of {esc(stop.get('budget'))}</b> generations · "
                                      f"{esc(stop.get('why', ''))}"))
    conf = trace.root.extra.get("deepconf") if isinstance(trace.root.extra, dict) else None
    if isinstance(conf, dict):
        frac = conf.get("spent_fraction")
        rows.append(("compute spent", f"<b>{esc(conf.get('tokens_spent'))} tokens</b> of about "
                                      f"{esc(conf.get('tokens_full_budget_estimate'))} for the full budget"
                                      + (f" ({float(frac):.0%})" if isinstance(frac, (int, float)) else "")
                                      + f" · {esc(conf.get('why', ''))}"))
    mcts = trace.root.extra.get("mcts") if isinstance(trace.root.extra, dict) else None
    if isinstance(mcts, dict) and mcts.get("tokens") is not None:
        budget, stopped = mcts.get("token_budget"), str(mcts.get("stopped", ""))
        rows.append(("compute spent", f"<b>{_count(mcts.get('tokens'))} tokens</b>"
                                      + (f" of {_count(budget)} (N x the mean finished solution)" if budget is not None else "")
                                      + f" · {esc(mcts.get('iterations'))} iterations, {esc(mcts.get('finished'))} finished"
                                      f" paths, values by {esc(mcts.get('evaluation', 'prm'))}"
                                      # the stop reason, where it is not the budget just shown
                                      + (f" · {esc(stopped)}" if stopped and not stopped.startswith("spent") else "")))
    truth = truth_summary(trace)
    if truth is not None:
        rows.append(("verifier vs step truth", _truth_words(truth)))
    body = "".join(f'<tr><td style="{_TD}">{k}</td><td style="{_TD}">{v}</td></tr>' for k, v in rows)
    comp = ""
    if trace.compute:
        head = "".join(f'<th style="{_TD}">{h}</th>' for h in ("model role", "params", "prompt tok", "generated tok", "FLOPs", "seconds"))
        lines = []
        items = list(trace.compute.items())
        tot = trace.totals()
        for role, mc in items + [("total", tot)]:
            params = _si(mc.params) if role != "total" else ""
            lines.append(
                f'<tr><td style="{_TD}">{esc(role)}</td><td style="{_TD}">{params}</td>'
                f'<td style="{_TD}">{mc.prompt_tokens:,}</td><td style="{_TD}">{mc.generated_tokens:,}</td>'
                f'<td style="{_TD}">{_si(mc.flops)}</td><td style="{_TD}">{mc.seconds:.1f}</td></tr>'
            )
        comp = f'<table style="{_TABLE}"><tr>{head}</tr>{"".join(lines)}</table>'
    err = ""
    if trace.error:
        err = f'<div style="color:#b00020; margin-top:4px"><b>Error:</b> {esc(trace.error)}</div>'
    return f'<div class="tts-summary" style="{_STYLE}"><table style="{_TABLE}">{body}</table>{comp}{err}</div>'


SHARED_CPU_BELOW = 0.6


def _shared_cpu_words(share) -> str:
    """Why a run was slow when the machine was busy: this process got only part of its cores."""
    if not isinstance(share, (int, float)) or isinstance(share, bool) or share >= SHARED_CPU_BELOW:
        return ""
    return (f' · <span style="color:#8a5a00">this search got {share:.0%} of the CPU: another program was using it, '
            f"so these seconds run long</span>")


def _truth_words(t: dict) -> str:
    """The summary's line on how often the verifier was fooled (numbers only: nothing to escape)."""
    cut = f"{t['threshold']:g}" + ("" if t["answer_threshold"] == t["threshold"]
                                    else f" ({t['answer_threshold']:g} for finished solutions)")
    words = (f"{t['rated_high_wrong']} wrong steps rated above {cut}, {t['rated_low_right']} right steps "
             f"rated below, of {t['labelled']} labelled")
    if t["rounds"]:
        words += f" · selection kept a wrong step over a right one in {t['fooled_rounds']} of {t['rounds']} rounds"
    if t["final_fooled"]:
        words += ' · <b style="color:#b00020">final choice fooled</b>: a right solution was finished but not chosen'
    return words


def compare_html(a: Trace | None, b: Trace | None) -> str:
    """One line that says which side of Compare won, and at what cost (tokens, seconds)."""
    if a is None or b is None:
        return ""

    def side(t: Trace, tag: str) -> str:
        who = esc(strategy_label(t.strategy)) + (f" · {esc(verifier_words(t.verifier))}" if t.verifier.startswith("oracle") else "")
        ans = esc(t.final_answer if t.final_answer is not None else "no answer")
        mark = "" if t.correct is None else (" ✓" if t.correct else " ✗")
        tot = t.totals()
        return f"<b>{tag}</b> {who}: {ans}{mark} ({tot.prompt_tokens + tot.generated_tokens:,} tokens, {t.seconds:.1f} s)"

    if a.correct is None or b.correct is None:
        verdict = "no gold answer: neither side can be called right"
    elif a.correct and not b.correct:
        verdict = "<b>A wins</b>"
    elif b.correct and not a.correct:
        verdict = "<b>B wins</b>"
    else:
        both = "both right" if a.correct else "both wrong"
        ta, tb = a.totals(), b.totals()
        ca, cb = ta.prompt_tokens + ta.generated_tokens, tb.prompt_tokens + tb.generated_tokens
        cheaper = "" if ca == cb else f"; {'A' if ca < cb else 'B'} used fewer tokens"
        verdict = both + cheaper
    return (f'<div class="tts-compare" style="{_STYLE}; padding:6px 8px; border:1px solid #ddd; border-radius:4px">'
            f"{side(a, 'A')} · {side(b, 'B')} → {verdict}</div>")


# ----- node inspector -----------------------------------------------------------------------
def inspector_html(trace: Trace | None, node_id: int | None) -> str:
    if trace is None:
        return f'<div style="{_STYLE}"><i>No tree yet.</i></div>'
    if node_id is None:
        return f'<div style="{_STYLE}"><i>Click a node in the tree (or pick its id) to inspect its path.</i></div>'
    if not 0 <= int(node_id) < len(trace.nodes):
        return f'<div style="{_STYLE}; color:#b00020">Node {esc(node_id)} is not in this tree (ids 0..{len(trace.nodes) - 1}).</div>'
    node = trace.node(int(node_id))
    if node.parent is None:
        return (f'<div class="tts-inspector" style="{_STYLE}"><b>Root: the question</b>{_pre(trace.question)}'
                f'<div>{len(trace.children(0))} first steps were proposed.</div></div>')
    path = trace.path(node.id)
    tokens = sum(n.tokens for n in path)
    parts = [
        f'<div><b>Node {node.id}</b> · depth {node.depth} · round {node.round} · status <b>{esc(node.status)}</b>'
        f' · path score {_num(node.agg_score)} · {tokens} tokens on this path ({node.tokens} in this step)</div>'
    ]
    if node.reason:
        parts.append(f'<div style="margin:4px 0"><i>Why: {esc(node.reason)}</i></div>')
    if node.answer is not None:
        parts.append(f"<div>Answer: <b>{esc(node.answer)}</b> · {esc(_verdict(node.correct))}</div>")
    truth_known = any(n.true_label is not None for n in path)
    search_col = _search_column(path)  # the method's own numbers per step: the ancestry click-through
    cols = ("step", "score") + (("true label",) if truth_known else ()) + ((search_col[0],) if search_col else ()) \
        + ("tokens",)
    rows = []
    for n in path:
        faded = "opacity:0.55;" if n.status == PRUNED else ""
        here = "background:#eef5ff;" if n.id == node.id else ""
        # one line of numbers, then the step's text across the whole panel (a narrow column made a
        # five-step path 800 px tall); LaTeX shown as plain maths, the raw text on hover
        rows.append(
            f'<tr style="{faded}{here}"><td style="{_TD}"><b>{n.depth}</b></td>'
            f'<td style="{_TD}">{_swatch(n.step_score)}{_num(n.step_score)}</td>'
            + (f'<td style="{_TD}">{_truth_cell(n.step_score, n.true_label, trace.threshold_for(n))}</td>' if truth_known else "")
            + (f'<td style="{_TD}">{search_col[1](n)}</td>' if search_col else "")
            + f'<td style="{_TD}">{n.tokens}</td></tr>'
            f'<tr style="{faded}{here}"><td colspan="{len(cols)}" style="{_TD}">{_maths(n.text)}'
            + (f'<div style="color:#666;font-size:12px">{esc(n.reason)}</div>' if n.reason and n.id != node.id else "")
            + "</td></tr>"
        )
    head = "".join(f'<th style="{_TD}">{h}</th>' for h in cols)
    parts.append(f'<table style="{_TABLE}"><tr>{head}</tr>{"".join(rows)}</table>')
    look = node.extra.get("lookahead") if isinstance(node.extra, dict) else None
    if look:
        steps = look if isinstance(look, list) else [look]
        parts.append("<div><b>Lookahead rollout</b> (greedy steps used to score this node):</div>"
                     + "".join(_pre(str(s)) for s in steps))
    kids = trace.children(node.id)
    if kids:
        parts.append(f"<div>{len(kids)} children: "
                     + ", ".join(f"{k.id} ({esc(k.status)}, {_num(k.step_score)})" for k in kids) + "</div>")
    return f'<div class="tts-inspector" style="{_STYLE}">{"".join(parts)}</div>'


def _search_column(path) -> tuple[str, Callable] | None:
    """(header, cell) for the numbers a method keeps per node: a particle's weight and copies (its
    ancestry: which step of its line was copied how often), an MCTS node's visits and value, a
    DeepConf sample's confidence. None when the path has none (numbers only: nothing to escape)."""
    def has(key):
        return any(extra_number(n, key) is not None for n in path)

    def particle(n):
        w, ref = extra_number(n, "rel_weight"), extra_number(n, "reference") is not None
        if w is None:
            return "reference" if ref else "–"
        return f"{w:.2f}× avg · {int(extra_number(n, 'copies') or 0)}" + (" · reference" if ref else "")

    if has("visits"):
        return "visits · value", lambda n: ("–" if extra_number(n, "visits") is None else
                                            f"{int(extra_number(n, 'visits'))} · {_num(extra_number(n, 'value'))}")
    if has("rel_weight"):
        return "particle weight · copies", particle
    if has("confidence"):
        return "confidence", lambda n: _num(extra_number(n, "confidence"))
    return None


def _truth_cell(score: float | None, label: bool | None, threshold: float) -> str:
    if label is None:
        return "–"
    kind = fooled_kind(score, label, threshold)
    text = "✓ right" if label else "✗ wrong"
    if kind:
        colour = "#b00020" if kind == FOOLED_HIGH else "#00803c"
        text += f'<div style="color:{colour};font-size:12px"><b>fooled:</b> {esc(kind)}</div>'
    return text


# ----- allocator decision -------------------------------------------------------------------
_ESTIMATE_WORDS = {"predicted": "mean verifier score of the probes", "oracle": "oracle pass@1 (needs the gold answer)"}
# Candidate columns the allocator writes (allocate.Decision), in reading order, with their headers.
_CANDIDATE_COLUMNS = (("expected_accuracy", "expected accuracy"), ("n_problems", "validation problems"),
                      ("budget", "looked up at N"), ("mean_flops", "FLOPs"), ("mean_tokens", "tokens"),
                      ("pooled_accuracy", "all bins"), ("reuses_probes", "reuses probes"),
                      ("available", "available"))
_DECISION_KEYS = {"difficulty", "estimate", "bin", "bin_label", "difficulty_bin", "choice", "strategy", "candidates",
                  "why", "reason", "expected_accuracy", "estimate_kind", "binning", "table_budget", "run_budget",
                  "budget", "probes", "probe_ids", "probe_use", "source", "table", "fallback", "note"}


def _pct(x) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) and not isinstance(x, bool) else "–"


def _cell(key: str, v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "✓" if v else "✗"
    if key in ("expected_accuracy", "pooled_accuracy") and isinstance(v, (int, float)):
        return _pct(v)
    if key == "mean_flops" and isinstance(v, (int, float)):
        return _si(v)
    if key == "mean_tokens" and isinstance(v, (int, float)):
        return f"{v:,.0f}"
    if isinstance(v, float):
        return _num(v)
    return esc(v)


def _table_words(t: Mapping) -> str:
    split = f" {esc(t['fitted_on'])}" if t.get("fitted_on") else ""
    bits = [f"fitted on {esc(t.get('n_problems', '?'))}{split} problems"]
    pair = " · ".join(esc(t[k]) for k in ("policy", "verifier") if t.get(k))
    if pair:
        bits.append("for " + pair)
    if t.get("problem_set"):
        bits.append(f"({esc(t['problem_set'])} problems)")
    if t.get("fingerprint"):
        bits.append(f'· table <code title="{esc(t.get("path") or "")}">{esc(t["fingerprint"])}</code>')
    return " ".join(bits)


def decision_html(trace: Trace | None) -> str:
    """The compute-optimal allocator's record (allocate.Decision.to_dict, in Trace.decision), for a
    person: the estimate and its bin, the choice and why, the candidates it weighed, any fallback.
    Keys it does not know (an older or hand-made trace) are listed at the end, escaped."""
    d = getattr(trace, "decision", None) if trace is not None else None
    if not d:
        return ""
    if not isinstance(d, Mapping):
        return f'<div style="{_STYLE}">{_pre(repr(d))}</div>'
    source = d.get("source")
    table = d.get("table") if isinstance(d.get("table"), Mapping) else None
    head = "<b>Compute-optimal allocator</b>"
    if table:
        head += " · strategy table " + _table_words(table)
    elif source:
        head += f" · {esc(source)}"
    parts = [f"<div>{head}</div>"]

    diff = d.get("difficulty", d.get("estimate"))  # allocate.Decision writes "estimate"
    b = d.get("bin_label") or d.get("bin", d.get("difficulty_bin"))
    if diff is not None or b is not None:
        line = "Estimated difficulty: <b>" + (_num(diff) if isinstance(diff, (int, float)) else esc(diff or "unknown")) + "</b>"
        kind = d.get("estimate_kind")
        if kind:
            words = _ESTIMATE_WORDS.get(kind, kind)
            probes = d.get("probes")
            if kind == "predicted" and isinstance(probes, int) and probes:
                words = f"mean verifier score of {probes} probe sample{'s' if probes != 1 else ''}"
            line += f" ({esc(words)})"
        if b is not None:
            b = str(b)
            line += " → <b>" + esc(b if b.startswith("bin") else f"bin {b}") + "</b>"
            if d.get("binning"):
                line += f", {esc(d['binning'])} bins"
        parts.append(f"<div>{line}</div>")

    choice = d.get("choice", d.get("strategy"))
    if isinstance(choice, Mapping):
        chosen_name, chosen_params = choice.get("strategy"), choice.get("params") or {}
    else:
        chosen_name, chosen_params = choice, None
    if choice is not None:
        line = f"Choice: <b>{esc(strategy_label(chosen_name, chosen_params))}</b>"
        if d.get("run_budget") is not None:
            line += f" with N = {esc(d['run_budget'])}"
        if d.get("budget") is not None and d.get("budget") != d.get("run_budget"):
            line += f" of the budget {esc(d['budget'])}"
        tb = d.get("table_budget")
        if tb is not None and tb != d.get("budget"):
            line += f" (the table has no column at {esc(d.get('budget'))}: read at N = {esc(tb)})"
        if isinstance(d.get("expected_accuracy"), (int, float)):
            line += f" · expected accuracy {_pct(d['expected_accuracy'])} (validation, this bin)"
        parts.append(f"<div>{line}</div>")
    why = d.get("why", d.get("reason"))
    if why:
        parts.append(f"<div><i>{esc(why)}</i></div>")
    if d.get("probe_use"):
        ids = d.get("probe_ids")
        nodes = f" (probe nodes {esc(', '.join(map(str, ids)))})" if isinstance(ids, list) and ids else ""
        parts.append(f"<div>{esc(d['probe_use'])}{nodes}</div>")
    fb = d.get("fallback")
    if fb:  # the note says it in words; this line says that it happened
        kinds = {"pair": "the table was fitted for another policy/verifier pair",
                 "cell": "the table's cell had no results of its own"}
        text = ("; ".join(kinds.get(k, str(k)) for k in fb) if isinstance(fb, Mapping)
                else json.dumps(fb, sort_keys=True, default=str))
        parts.append(f'<div style="color:#8a5a00"><b>⚠ Fallback</b>: {esc(text)}</div>')
    if d.get("note"):
        parts.append(f'<div style="color:#8a5a00"><b>Note</b>: {esc(d["note"])}</div>')

    cands = d.get("candidates")
    if isinstance(cands, Mapping):
        cands = [dict(strategy=k, **(v if isinstance(v, Mapping) else {"expected_accuracy": v})) for k, v in cands.items()]
    cands = [c for c in cands if isinstance(c, Mapping)] if isinstance(cands, list) else []
    if cands:
        known = {"strategy", "name", "params", "chosen"}
        cols = [(k, h) for k, h in _CANDIDATE_COLUMNS if any(k in c for c in cands)]
        known |= {k for k, _ in cols}
        extra = []
        for c in cands:
            extra += [k for k in c if k not in known and k not in extra]
        cols += [(k, k) for k in extra]
        header = f'<th style="{_TD}">strategy</th>' + "".join(f'<th style="{_TD}">{esc(h)}</th>' for _, h in cols)
        rows = []
        for c in cands:
            name = c.get("strategy", c.get("name"))
            chosen = c.get("chosen") if "chosen" in c else (
                name == chosen_name and (chosen_params is None or (c.get("params") or {}) == chosen_params))
            style = "background:#e6f4ea;font-weight:bold;" if chosen else (
                "color:#999;" if c.get("available") is False else "")
            cells = "".join(f'<td style="{_TD}white-space:nowrap">{_cell(k, c.get(k))}</td>' for k, _ in cols)
            rows.append(f'<tr style="{style}"><td style="{_TD}">{esc(strategy_label(name, c.get("params")))}</td>{cells}</tr>')
        parts.append(f'<div style="overflow-x:auto"><table style="{_TABLE}"><tr>{header}</tr>{"".join(rows)}</table></div>')

    rest = {k: v for k, v in d.items() if k not in _DECISION_KEYS}
    if rest:
        parts.append(f'<table style="{_TABLE}">' + "".join(
            f'<tr><td style="{_TD}">{esc(k)}</td><td style="{_TD}">{esc(v)}</td></tr>' for k, v in rest.items()) + "</table>")
    return f'<div class="tts-decision" style="{_STYLE}">{"".join(parts)}</div>'


# ----- PRM inspector ------------------------------------------------------------------------
def first_below(scores: Sequence[float | None], threshold: float | Sequence[float]) -> int | None:
    """The first step scored below its threshold (one for every step, or a threshold per step)."""
    for i, s in enumerate(scores):
        cut = threshold if isinstance(threshold, (int, float)) else threshold[i]
        if s is not None and not (isinstance(s, float) and math.isnan(s)) and s < cut:
            return i
    return None


def scores_table_html(steps: Sequence[str], scores: Mapping[str, Sequence[float | None] | str],
                      threshold: float = 0.5, own: Mapping[str, Sequence[float]] | None = None) -> str:
    """Steps as rows, verifiers as columns. A verifier's value is its per-step scores, or a
    string saying why it is unavailable. The first step below `threshold` is marked per column, or,
    for a column in `own`, the first below that verifier's own threshold of each step (a trained
    PRM's card gives one for steps and one for a step that states the final answer)."""
    if not steps:
        return f'<div style="{_STYLE}"><i>No steps: paste a solution (steps separated by blank lines) or pick a node.</i></div>'
    own = own or {}
    names = list(scores)
    firsts = {name: first_below(v, own.get(name, threshold)) if not isinstance(v, str) else None
              for name, v in scores.items()}
    head = f'<th style="{_TD}">#</th><th style="{_TD}">step</th>' + "".join(f'<th style="{_TD}">{esc(n)}</th>' for n in names)
    rows = []
    for i, step in enumerate(steps):
        cells = []
        for name in names:
            v = scores[name]
            if isinstance(v, str):
                cells.append(f'<td style="{_TD};color:#888">n/a</td>')
                continue
            s = v[i] if i < len(v) else None
            mark = ""
            style = _TD
            if firsts[name] == i:
                cut = own[name][i] if name in own else threshold
                mark = ' <b title="first step below the threshold">⚠ first &lt; ' + f"{cut:g}</b>"
                style += ";outline:2px solid #b00020"
            cells.append(f'<td style="{style}">{_swatch(s)}{_num(s)}{mark}</td>')
        rows.append(f'<tr><td style="{_TD}">{i + 1}</td><td style="{_TD}">{_pre(step)}</td>{"".join(cells)}</tr>')
    notes = "".join(f'<div style="color:#8a5a00"><b>{esc(n)}</b>: {esc(v)}</div>' for n, v in scores.items() if isinstance(v, str))
    return (f'<div class="tts-prm" style="{_STYLE}"><table style="{_TABLE}"><tr>{head}</tr>{"".join(rows)}</table>'
            f"{notes}</div>")


def prm_report_html(report: Mapping | None) -> str:
    """The prm-eval report (see tts_viz/prm_eval.py) as one table: a row per problem set x verifier."""
    if not report or not report.get("sets"):
        return (f'<div style="{_STYLE}"><i>No verifier evaluation shipped yet: run '
                "<code>python -m tts_viz prm-eval</code> (writes runs/prm-eval/report.json).</i></div>")
    cols = [("within-problem AUROC", lambda m: m.get("within_auroc")),
            ("mixed problems", lambda m: m.get("mixed_problems")),
            ("step AUROC", lambda m: m.get("step_auroc")), ("first-error F1", lambda m: (m.get("first_error") or {}).get("f1")),
            ("solution AUROC", lambda m: m.get("solution_auroc")),
            ("best-of-N", lambda m: m["selection"]["best"]), ("weighted best-of-N", lambda m: m["selection"]["weighted"]),
            ("majority@N", lambda m: m["selection"]["majority"]), ("pass@1", lambda m: m["selection"]["pass@1"]),
            ("pass@N", lambda m: m["selection"]["pass@n"])]
    head = f'<th style="{_TD}">problems</th><th style="{_TD}">verifier</th>' + "".join(f'<th style="{_TD}">{esc(c)}</th>' for c, _ in cols)
    rows = []
    for set_name, entry in report["sets"].items():
        what = f"{esc(set_name)} ({int(entry.get('problems', 0))} × {int(entry.get('samples', 0)) // max(int(entry.get('problems', 1)), 1)})"
        for name, m in (entry.get("verifiers") or {}).items():
            cells = "".join(f'<td style="{_TD}">{v if isinstance(v := f(m), int) else _num(v)}</td>' for _, f in cols)
            rows.append(f'<tr><td style="{_TD}">{what}</td><td style="{_TD}">{esc(name)}</td>{cells}</tr>')
    note = esc(f"policy {report.get('policy', '?')}; N = samples per problem; AUROC 0.5 = no signal. Within-problem "
               "AUROC ranks the samples of one problem (mean over the problems with right and wrong samples): "
               "what best-of-N needs. Solution AUROC pools all problems, so knowing which problems are easy raises it.")
    return (f'<div class="tts-prm-report" style="{_STYLE}"><table style="{_TABLE}"><tr>{head}</tr>{"".join(rows)}</table>'
            f'<div style="color:#666">{note}</div></div>')
