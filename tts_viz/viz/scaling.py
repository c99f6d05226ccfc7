"""The Scaling tab's figures and tables, from sweep result rows (tts_viz/sweep.py): pure functions.

- accuracy vs budget per strategy, one panel per difficulty bin (bins of the held-out problems' oracle
  pass@1, as Snell et al. plot them), `auto` drawn last and thickest;
- accuracy vs total FLOPs per problem for every (policy, strategy) in the rows: the FLOPs-matched
  comparison of a small model with test-time compute against a bigger one (Snell, Liu);
- the budget ratio: the smallest budget at which auto reaches weighted-best-of-16's accuracy;
- auto against each strategy problem by problem (wins, losses, exact sign test), and how well the
  probes' gold-free difficulty estimates rank problems by pass@1 (for scaling-report);
- the lookup ablation: held-out accuracy of a free table lookup per difficulty estimate x binning,
  which splits auto's gap into probe cost, estimate quality and too few validation problems per cell.
"""

from __future__ import annotations

import datetime as _dt
import json
from math import comb, floor, log10, sqrt
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..allocate import (ASSETS_DIR, NOT_CANDIDATES, AbsoluteBins, QuantileBins, current_rows, fit_table, params_key,
                        predicted_difficulty)
from ..grading import group_answers
from .figures import esc, si_split, strategy_label

SCALING_RESULTS = ASSETS_DIR / "scaling" / "results.jsonl"
ALL = "all"
# Fixed colours: a strategy keeps its colour in every panel and every figure.
STRATEGY_COLORS = {
    "majority": "#1f77b4", "best-of-n": "#ff7f0e", "weighted-best-of-n": "#2ca02c", "beam": "#d62728",
    "dvts": "#9467bd", "lookahead": "#8c564b", "revisions": "#e377c2", "auto": "#111111",
}


def load_results_file(path: str | Path = SCALING_RESULTS) -> list[dict[str, Any]]:
    """Rows of a sweep results file; [] if there is none (a truncated last line is skipped)."""
    from ..results import load_results

    return load_results(path)


def _usable(r: Mapping[str, Any]) -> bool:
    return r.get("strategy") != "pool" and r.get("status") != "error" and r.get("correct") is not None


def curve_label(r: Mapping[str, Any], with_policy: bool = False) -> str:
    label = strategy_label(r["strategy"], json.loads(params_key(r.get("params"))))
    return f"{r.get('policy', '?')}: {label}" if with_policy else label


def _auto_last(label: str) -> tuple[bool, str]:
    """Sort key of curve labels: alphabetical, auto's after the rest (drawn on top, listed last)."""
    return label.startswith("auto"), label


def oracle_bins(rows: Sequence[Mapping[str, Any]], binning=None) -> dict[str, str]:
    """problem id -> bin label of its oracle pass@1 (from its pool row, else any row carrying it).
    binning: an AbsoluteBins/QuantileBins; default Liu's absolute easy/medium/hard."""
    binning = binning or AbsoluteBins()
    oracle: dict[str, float] = {}
    for r in rows:
        v = r.get("oracle_difficulty")
        if v is not None and (r.get("strategy") == "pool" or r["problem_id"] not in oracle):
            oracle[r["problem_id"]] = float(v)
    return {pid: str(binning.label(v)) for pid, v in oracle.items()}


def wilson_interval(right: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy of right/n (sound at the few problems a CPU study
    has, and at 0 or n right, where the normal approximation collapses to a point)."""
    if n <= 0:
        return 0.0, 1.0
    p = right / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _cell(rs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    right = sum(bool(r["correct"]) for r in rs)
    lo, hi = wilson_interval(right, len(rs))
    return {"accuracy": right / len(rs), "n": len(rs), "lo": lo, "hi": hi,
            "flops": sum(float(r.get("flops") or 0.0) for r in rs) / len(rs)}


def _interval_bars(cells: Sequence[Mapping[str, float]], color: str) -> dict[str, Any]:
    """Thin error bars from each cell's Wilson interval."""
    return dict(type="data", symmetric=False, array=[c["hi"] - c["accuracy"] for c in cells],
                arrayminus=[c["accuracy"] - c["lo"] for c in cells], thickness=1, width=3, color=color)


def _note_below(fig: go.Figure, text: str) -> None:
    """A small note under the legend (the title has room for one subtitle line at most)."""
    fig.add_annotation(text=text, showarrow=False, x=0, y=-0.45, xref="paper", yref="paper", xanchor="left",
                       yanchor="top", font=dict(size=11, color="#555"))


INTERVAL_NOTE = ("bars: 95% interval of each point over its problems; the curves share their problems, so two "
                 "overlapping bars can still differ (scaling-report's paired sign test compares them)")


def accuracy_by_bin(rows: Iterable[Mapping[str, Any]], split: str | None = "test", policy: str | None = None,
                    binning=None) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """bin -> curve label -> budget -> {accuracy, n, lo, hi (its Wilson interval), flops (mean per
    problem)}; bin ALL covers every problem. Rows of other splits / policies are left out; problems
    without an oracle difficulty only count in ALL."""
    rows = [r for r in rows if (split is None or r.get("split") == split) and (policy is None or r.get("policy") == policy)]
    bins = oracle_bins(rows, binning)
    acc: dict[str, dict[str, dict[int, list]]] = {}
    for r in rows:
        if not _usable(r):
            continue
        for b in {ALL, bins.get(r["problem_id"], ALL)}:
            cell = acc.setdefault(b, {}).setdefault(curve_label(r), {}).setdefault(int(r["budget"]), [])
            cell.append(r)
    out: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    for b, curves in acc.items():
        for label, by_n in curves.items():
            for n, rs in by_n.items():
                out.setdefault(b, {}).setdefault(label, {})[n] = _cell(rs)
    return out


def _bin_order(labels: Iterable[str], binning) -> list[str]:
    known = list(getattr(binning or AbsoluteBins(), "labels", []))
    labels = set(labels) - {ALL}
    return [ALL] + [b for b in known if b in labels] + sorted(labels - set(known))


def _shade(hex_color: str, k: int) -> str:
    """The k-th policy's shade of a strategy colour: the first as is, later ones darker."""
    if k == 0 or not hex_color.startswith("#") or len(hex_color) != 7:
        return hex_color
    f = max(0.35, 1.0 - 0.3 * k)
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"#{int(r * f):02x}{int(g * f):02x}{int(b * f):02x}"


def _color(label: str) -> str:
    return STRATEGY_COLORS.get(label.split(" (")[0].split(": ")[-1], "#7f7f7f")


def scaling_figure(rows: Sequence[Mapping[str, Any]], split: str | None = "test", policy: str | None = None,
                   binning=None) -> go.Figure:
    """Accuracy vs budget (log2 axis), one line per strategy, one panel per difficulty bin."""
    data = accuracy_by_bin(rows, split, policy, binning)
    if not data:
        fig = go.Figure()
        fig.add_annotation(text="No sweep results for this split.", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        fig.update_layout(xaxis_visible=False, yaxis_visible=False, height=300)
        return fig
    order = _bin_order(data, binning)
    desc = getattr(binning or AbsoluteBins(), "describe", lambda b: b)
    titles = []
    for b in order:
        problems = max((c["n"] for curve in data[b].values() for c in curve.values()), default=0)
        titles.append(f"{'all problems' if b == ALL else desc(b)}: {problems} problems")
    fig = make_subplots(rows=1, cols=len(order), shared_yaxes=True, subplot_titles=titles, horizontal_spacing=0.03)
    labels = sorted({lab for b in order for lab in data[b]}, key=_auto_last)  # auto on top
    for col, b in enumerate(order, start=1):
        for label in labels:
            curve = data[b].get(label)
            if not curve:
                continue
            ns = sorted(curve)
            is_auto = label.startswith("auto")
            fig.add_trace(go.Scatter(
                x=ns, y=[curve[n]["accuracy"] for n in ns], mode="lines+markers", name=label, legendgroup=label,
                showlegend=col == 1, line=dict(color=_color(label), width=4 if is_auto else 2,
                                               dash="solid" if is_auto else None),
                marker=dict(size=9 if is_auto else 6),
                error_y=_interval_bars([curve[n] for n in ns], _color(label)),
                customdata=[[curve[n]["n"], curve[n]["flops"], curve[n]["lo"], curve[n]["hi"]] for n in ns],
                hovertemplate=f"{esc(label)}<br>budget %{{x}}<br>accuracy %{{y:.3f}} (95%: %{{customdata[2]:.2f}}-"
                              "%{customdata[3]:.2f})<br>%{customdata[0]} problems"
                              "<br>%{customdata[1]:.3s} FLOPs per problem<extra></extra>"), row=1, col=col)
        fig.update_xaxes(type="log", dtick=0.30102999566, title_text="budget (generations)", row=1, col=col)
    fig.update_yaxes(range=[-0.02, 1.02], title_text="accuracy", row=1, col=1)
    title = f"Accuracy vs test-time budget ({split or 'all'} split)"
    known = list(getattr(binning or AbsoluteBins(), "labels", []))
    empty = [b for b in known if b not in order]
    if empty:  # a bin no problem of this split fell into gets no panel: say so
        title += (f"<br><sup>bins {', '.join(known)}: no problem of this split fell in {', '.join(empty)}, "
                  f"so {'they get' if len(empty) > 1 else 'it gets'} no panel</sup>")
    _note_below(fig, INTERVAL_NOTE)
    fig.update_layout(height=500 if empty else 480, margin=dict(l=50, r=20, t=80 if empty else 60, b=150),
                      legend=dict(orientation="h", y=-0.25), title=title)
    return fig


def si_log_ticks(values: Sequence[float]) -> tuple[list[float], list[str]]:
    """1-2-5 tick values spanning `values` (positive), labelled in SI units ('200G', '1T', '5T'):
    plotly's default log ticks label only the powers of ten with a unit and the rest as bare digits."""
    vals = [v for v in values if v > 0]
    if not vals:
        return [], []
    lo, hi = min(vals), max(vals)
    steps = [(m, m * 10.0 ** e) for e in range(floor(log10(lo)), floor(log10(hi)) + 2) for m in (1, 2, 5)]
    steps = [(m, t) for m, t in steps if lo / 2 <= t <= hi * 2]
    if len(steps) > 12:  # many decades: powers of ten only, or the labels overlap
        steps = [(m, t) for m, t in steps if m == 1]
    ticks = [t for _, t in steps]
    return ticks, ["{:.3g}{}".format(*si_split(t)) for t in ticks]


def flops_figure(rows: Sequence[Mapping[str, Any]], split: str | None = "test",
                 strategies: Sequence[str] | None = None) -> go.Figure:
    """Accuracy vs mean total FLOPs per problem (log axis), one line per (policy, strategy): a small
    policy's search curves beside a bigger policy's greedy / majority points at matched FLOPs."""
    rows = [r for r in rows if _usable(r) and (split is None or r.get("split") == split)
            and (strategies is None or r["strategy"] in strategies)]
    curves: dict[str, dict[int, list]] = {}
    for r in rows:
        curves.setdefault(curve_label(r, with_policy=True), {}).setdefault(int(r["budget"]), []).append(r)
    fig = go.Figure()
    policies = sorted({r.get("policy", "?") for r in rows})
    dashes = ["solid", "dash", "dot", "dashdot"]
    for label in sorted(curves):
        by_n = curves[label]
        ns = sorted(by_n)
        pol = label.split(": ")[0]
        xs = [sum(float(r.get("flops") or 0) for r in by_n[n]) / len(by_n[n]) for n in ns]
        ys = [sum(bool(r["correct"]) for r in by_n[n]) / len(by_n[n]) for n in ns]
        k = policies.index(pol) if pol in policies else 0
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=label,
            # another policy: another dash, marker and shade, so its majority line is not the other's
            line=dict(color=_shade(_color(label), k), dash=dashes[k % len(dashes)]),
            marker=dict(symbol=["circle", "square", "diamond", "triangle-up"][k % 4], size=7),
            customdata=[[n, len(by_n[n])] for n in ns],
            hovertemplate=f"{esc(label)}<br>budget %{{customdata[0]}}<br>%{{x:.3s}} FLOPs per problem"
                          "<br>accuracy %{y:.3f} (%{customdata[1]} problems)<extra></extra>"))
    tickvals, ticktext = si_log_ticks([x for tr in fig.data for x in tr.x])
    fig.update_layout(height=420, margin=dict(l=50, r=20, t=50, b=50), title="FLOPs-matched: accuracy vs total FLOPs per problem",
                      xaxis=dict(type="log", title="mean total FLOPs per problem (prompt + generated, policy + verifier)",
                                 tickvals=tickvals or None, ticktext=ticktext or None),
                      yaxis=dict(range=[-0.02, 1.02], title="accuracy"), legend=dict(orientation="h", y=-0.25))
    if not rows:
        fig.add_annotation(text="No sweep results for this split.", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
    return fig


def budget_ratio(rows: Sequence[Mapping[str, Any]], split: str | None = "test", policy: str | None = None,
                 reference: str = "weighted-best-of-n", reference_budget: int = 16) -> dict[str, Any]:
    """The smallest budget at which auto's accuracy reaches `reference` at `reference_budget` (all
    problems of the split). ratio = reference_budget / that budget; None where auto never gets there
    or a curve is missing."""
    allbin = accuracy_by_bin(rows, split, policy).get(ALL, {})
    ref = next((c for label, c in allbin.items() if label.split(" (")[0] == reference), {})
    auto = next((c for label, c in allbin.items() if label.split(" (")[0] == "auto"), {})
    target = ref.get(reference_budget, {}).get("accuracy")
    out: dict[str, Any] = {"reference": f"{reference}@{reference_budget}", "reference_accuracy": target,
                           "auto_budget": None, "ratio": None}
    if target is None or not auto:
        out["note"] = (f"{reference} was not run at N={reference_budget} here" if target is None
                       else "auto was not evaluated on these rows yet, so there is nothing to compare")
        return out
    for n in sorted(auto):
        if auto[n]["accuracy"] >= target - 1e-12:
            out.update(auto_budget=n, auto_accuracy=auto[n]["accuracy"], ratio=reference_budget / n)
            return out
    out["note"] = f"auto never reaches {target:.3f} (best {max(c['accuracy'] for c in auto.values()):.3f})"
    return out


def budget_ratio_line(ratio: Mapping[str, Any], split: str | None = None) -> str:
    """budget_ratio's result as one Markdown sentence (the Scaling tab and scaling-report)."""
    head = f"**Budget ratio{f' ({split})' if split else ''}:**"
    if ratio["ratio"] is None:
        return f"{head} none ({ratio.get('note', '')})."
    saving = f"{ratio['ratio']:g}x less compute." if ratio["ratio"] > 1 else "no saving."
    return (f"{head} auto reaches {ratio['reference']}'s accuracy ({ratio['reference_accuracy']:.3f}) "
            f"at budget {ratio['auto_budget']}: {saving}")


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test on the discordant pairs: the chance of a split at least this uneven
    if auto and the other strategy were equally good (ties carry no information)."""
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def paired_against(rows: Sequence[Mapping[str, Any]], split: str | None = "test", policy: str | None = None,
                   reference: str = "auto") -> dict[str, dict[int, dict[str, Any]]]:
    """curve label -> budget -> {won, lost, tied, n, p}: the `reference` curve (auto, or e.g. majority)
    against each other curve at the same budget, problem by problem (only problems both ran). won =
    the reference right where the other was wrong. With a few dozen problems an accuracy gap of one or
    two problems is noise; this says how much."""
    rows = [r for r in rows if _usable(r) and (split is None or r.get("split") == split)
            and (policy is None or r.get("policy") == policy)]
    ref: dict[int, dict[str, bool]] = {}  # budget -> problem -> the reference right
    correct: dict[tuple[str, int], dict[str, bool]] = {}  # (curve label, budget) -> problem -> right
    for r in rows:
        label = curve_label(r)
        cell = ref.setdefault(int(r["budget"]), {}) if label == reference else \
            correct.setdefault((label, int(r["budget"])), {})
        cell[r["problem_id"]] = bool(r["correct"])
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for (label, n), mine in sorted(correct.items()):
        if n not in ref:
            continue
        shared = sorted(set(mine) & set(ref[n]))
        won = sum(ref[n][p] and not mine[p] for p in shared)
        lost = sum(mine[p] and not ref[n][p] for p in shared)
        out.setdefault(label, {})[n] = {"won": won, "lost": lost, "tied": len(shared) - won - lost,
                                        "n": len(shared), "p": sign_test_p(won, lost)}
    return out


PAIRED_NOTE = ("+won −lost: problems {ref} got right where the strategy was wrong, and the reverse; p: exact "
               "two-sided sign test on those (ties left out).")


def paired_table_markdown(rows: Sequence[Mapping[str, Any]], split: str | None = "test", policy: str | None = None,
                          reference: str = "auto") -> str:
    """paired_against as Markdown: one row per strategy, one column per budget the reference ran; ""
    when there is nothing to compare (no reference rows, or none at a budget another strategy ran)."""
    pairs = paired_against(rows, split, policy, reference)
    if not pairs:
        return ""
    budgets = sorted({n for c in pairs.values() for n in c})
    lines = [f"| {reference} against | " + " | ".join(f"N={n}" for n in budgets) + " |",
             "|---" * (len(budgets) + 1) + "|"]
    for label in sorted(pairs, key=_auto_last):
        cells = [f"+{c['won']} −{c['lost']} (p={c['p']:.2f})" if (c := pairs[label].get(n)) else "-" for n in budgets]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def accuracy_table_markdown(rows: Sequence[Mapping[str, Any]], split: str | None = "test", policy: str | None = None) -> str:
    """Strategies x budgets accuracy table (all problems of the split) as Markdown, for the README."""
    allbin = accuracy_by_bin(rows, split, policy).get(ALL, {})
    if not allbin:
        return "_No results for this split._"
    budgets = sorted({n for c in allbin.values() for n in c})
    lines = ["| strategy | " + " | ".join(f"N={n}" for n in budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
    for label in sorted(allbin, key=_auto_last):
        c = allbin[label]
        cells = [f"{c[n]['accuracy']:.3f} ({c[n]['n']})" if n in c else "-" for n in budgets]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verifier_pair_markdown(rows: Sequence[Mapping[str, Any]], split: str, policy: str, a: str, b: str) -> str:
    """Accuracy of each strategy x budget under verifiers a and b, on the problems both ran that cell
    (a paired comparison: same problems, and the pool rules the same samples), as Markdown."""
    cur = current_rows([r for r in rows if r.get("policy") == policy and r.get("split") == split
                        and r.get("verifier") in (a, b) and r.get("strategy") != "pool" and r.get("status") == "done"
                        and r.get("correct") is not None])
    cells: dict[tuple[str, int], dict[str, dict[str, bool]]] = {}
    for r in cur:
        cells.setdefault((curve_label(r), int(r["budget"])), {}).setdefault(r["verifier"], {})[r["problem_id"]] = bool(
            r["correct"])
    both = {k for k, c in cells.items() if set(c.get(a, {})) & set(c.get(b, {}))}  # cells both verifiers ran
    budgets = sorted({n for _, n in both})
    labels = sorted({lab for lab, _ in both}, key=_auto_last)
    if not labels:
        return ""
    lines = ["| strategy | " + " | ".join(f"N={n}" for n in budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
    for lab in labels:
        out = []
        for n in budgets:
            c = cells.get((lab, n), {})
            shared = sorted(set(c.get(a, {})) & set(c.get(b, {})))
            if not shared:
                out.append("-")
                continue
            acc = [sum(c[v][p] for p in shared) / len(shared) for v in (a, b)]
            out.append(f"{acc[0]:.3f} / {acc[1]:.3f} ({len(shared)})")
        lines.append(f"| {lab} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def binning_for(kind: str, rows: Sequence[Mapping[str, Any]] = (), fit_split: str = "val", k: int = 5):
    """'absolute': Liu's easy/medium/hard. 'quantile': Snell's k quantile bins of oracle pass@1, fitted
    on the `fit_split` problems (so held-out problems are binned by validation edges)."""
    if kind == "quantile":
        vals = {r["problem_id"]: r["oracle_difficulty"] for r in rows
                if r.get("split") == fit_split and r.get("oracle_difficulty") is not None}
        if vals:
            return QuantileBins.fit(vals.values(), k=k)
    return AbsoluteBins()


def scaling_view(rows: Sequence[Mapping[str, Any]], split: str, binning_kind: str, policy: str | None = None):
    """Everything the Scaling tab shows: (budget figure, FLOPs figure, Markdown with the budget ratio
    and the accuracy table). `policy`: the curve set of the budget figure (default: the first in rows)."""
    if not rows:
        msg = ("**No sweep results shipped yet.** Produce them with `python -m tts_viz sweep` into "
               "`assets/scaling/results.jsonl` (see the README's scaling study).")
        return scaling_figure([], split), flops_figure([], split), msg
    all_rows, rows = rows, current_rows(rows)
    policies = sorted({r.get("policy") for r in rows if r.get("policy")})
    policy = policy if policy in policies else (policies[0] if policies else None)
    line = budget_ratio_line(budget_ratio(rows, split, policy))
    md = (f"{line}\n\nAccuracy of {policy} on the {split} split (problems per cell in brackets):\n\n"
          + accuracy_table_markdown(rows, split, policy))
    for ref in ("auto", "majority"):
        if paired := paired_table_markdown(rows, split, policy, reference=ref):
            md += (f"\n\n{ref} against each strategy at the same budget, problem by problem. "
                   f"{PAIRED_NOTE.format(ref=ref)} A gap of a problem or two is noise.\n\n" + paired)
    ablation = lookup_ablation_markdown(rows, policy) if split == "test" else ""  # fitted on val, read on test
    if ablation:
        md += ("\n\nWhere auto's gap comes from: held-out accuracy of a strategy table fitted on validation with each "
               "difficulty estimate and binning, looked up for free (no probes paid; oracle pass@1 is a ceiling "
               "that needs the gold answer):\n\n" + ablation)
    md += "\n\n**What ran:**\n\n" + what_ran_markdown(all_rows)
    return (scaling_figure(rows, split, policy, binning_for(binning_kind, rows)), flops_figure(rows, split), md)


def bin_winners(rows: Sequence[Mapping[str, Any]], split: str | None, policy: str | None = None,
                binning=None) -> dict[str, dict[int, dict[str, Any]]]:
    """bin -> budget -> {best: [curve labels tied at the top], accuracy, n}: which strategy wins
    where (auto left out: it is the allocator, not a candidate). Only strategies that ran on all of
    the bin's problems at that budget compete: a partial curve's few problems are not comparable."""
    data = accuracy_by_bin(rows, split, policy, binning)
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for b, curves in data.items():
        for n in sorted({n for c in curves.values() for n in c}):
            cells = {lab: c[n] for lab, c in curves.items() if n in c and not lab.startswith("auto")}
            if not cells:
                continue
            most = max(c["n"] for c in cells.values())
            cells = {lab: c for lab, c in cells.items() if c["n"] == most}
            top = max(c["accuracy"] for c in cells.values())
            # where nothing solves a problem there is no winner (not a tie of every strategy)
            best = sorted(lab for lab, c in cells.items() if c["accuracy"] >= top - 1e-12) if top > 0 else []
            out.setdefault(b, {})[n] = {"best": best,
                                        "accuracy": top, "n": max(c["n"] for c in cells.values())}
    return out


def flops_matched(rows: Sequence[Mapping[str, Any]], small: str, big: str, split: str | None = "test") -> list[dict[str, Any]]:
    """For every point of the big policy (strategy @ budget): its accuracy and mean FLOPs, and the
    small policy's best curve point that spends no more FLOPs (on the problems both ran; a small-policy
    curve point that reached fewer of them than the big point did is not a candidate)."""
    rows = [r for r in rows if _usable(r) and (split is None or r.get("split") == split)]
    shared = {r["problem_id"] for r in rows if r.get("policy") == big} & {r["problem_id"] for r in rows if r.get("policy") == small}
    rows = [r for r in rows if r["problem_id"] in shared]

    def points(policy: str) -> dict[tuple[str, int], dict[str, float]]:
        curves = accuracy_by_bin(rows, split, policy).get(ALL, {})
        return {(label, n): cell for label, by_n in curves.items() for n, cell in by_n.items()}

    small_pts, out = points(small), []
    for (label, n), p in sorted(points(big).items()):
        cheaper = [(k, q) for k, q in small_pts.items()
                   if q["flops"] <= p["flops"] and k[0] != "auto" and q["n"] >= p["n"]]
        best = max(cheaper, key=lambda kq: (kq[1]["accuracy"], -kq[1]["flops"]), default=None)
        out.append({"big": f"{label}@{n}", "big_accuracy": p["accuracy"], "big_flops": p["flops"], "n": p["n"],
                    "small": f"{best[0][0]}@{best[0][1]}" if best else None,
                    "small_accuracy": best[1]["accuracy"] if best else None,
                    "small_flops": best[1]["flops"] if best else None})
    return out


def probe_agreement(answers: Sequence[str | None]) -> float:
    """Share of the probes in the largest group of equivalent answers, grouped as the majority vote
    groups them (no answer counts as disagreeing)."""
    groups = [g for g in group_answers(list(answers)) if answers[g[0]] is not None]
    return max(map(len, groups), default=0) / len(answers) if answers else 0.0


def difficulty_predictors(rows: Sequence[Mapping[str, Any]], policy: str | None = None, probes: int = 4) -> dict[str, Any]:
    """How well two gold-free estimates from the first `probes` pool samples rank problems by their
    oracle pass@1 on the pool's other samples (so a probe is never scored against itself): the mean
    verifier score of the probes (what auto uses, as the issue defines it) and the probes' answer
    agreement. Spearman rank correlation over every problem with a scored pool, both splits."""
    import pandas as pd  # gradio's own dependency; only this diagnostic needs it

    pts = []
    for r in rows:
        if r.get("strategy") != "pool" or (policy and r.get("policy") != policy):
            continue
        scores, answers, right = r.get("scores") or [], r.get("answers") or [], r.get("sample_correct") or []
        estimate = predicted_difficulty(scores[:probes])  # auto's own estimate from these probes
        if len(right) <= probes or len(scores) < probes or estimate is None:
            continue
        rest = right[probes:]
        pts.append({"mean score": estimate, "agreement": probe_agreement(answers[:probes]),
                     "oracle": sum(map(bool, rest)) / len(rest)})
    out: dict[str, Any] = {"problems": len(pts), "probes": probes}
    if len(pts) >= 3:
        df = pd.DataFrame(pts).rank()  # Spearman = Pearson on average ranks (no scipy needed)
        for k in ("mean score", "agreement"):
            rho = df[k].corr(df["oracle"])
            out[k] = None if pd.isna(rho) else float(rho)
    return out


# The lookup ablation's estimates of a problem's difficulty, from its pool row (higher = easier).
LOOKUP_ESTIMATES = {
    "mean probe score": lambda r, k: predicted_difficulty((r.get("scores") or [])[:k]),  # auto's, as the issue defines it
    "probe agreement": lambda r, k: probe_agreement((r.get("answers") or [])[:k]) if r.get("answers") else None,
    "oracle pass@1": lambda r, k: r.get("oracle_difficulty"),  # needs the gold answer: a ceiling, not a method
}


def table_lookup_ablation(rows: Sequence[Mapping[str, Any]], policy: str | None = None, fit_split: str = "val",
                          split: str = "test", probes: int = 4) -> list[dict[str, Any]]:
    """Where auto's gap comes from: held-out accuracy of a strategy table's choice when the lookup is
    free, for each difficulty estimate x binning. A table is fitted (`fit_table`) on the `fit_split`
    rows with the estimate computed from each problem's pool (the first `probes` samples for the
    gold-free ones); each held-out problem then answers, at each budget, with the row of the strategy
    its bin's cell chose at that budget. No probe is paid for and a search keeps its whole budget, so
    against auto as run this isolates the probe cost; oracle pass@1 against the probe estimates
    isolates the estimate; bins against one bin isolates what a few validation problems per cell
    cost. Returns [{estimate, bins, accuracy {budget: acc}, n {budget: problems}, edges}]."""
    rows = [r for r in current_rows(rows) if policy is None or r.get("policy") == policy]
    pools = {r["problem_id"]: r for r in rows if r.get("strategy") == "pool" and r.get("status") != "error"}
    cands = [r for r in rows if _usable(r) and r["strategy"] not in NOT_CANDIDATES and r["problem_id"] in pools]
    fit_rows = [r for r in cands if r.get("split") == fit_split]
    held: dict[tuple, bool] = {(r["problem_id"], r["strategy"], params_key(r.get("params")), int(r["budget"])): bool(r["correct"])
                               for r in cands if r.get("split") == split}
    held_ids = sorted({k[0] for k in held})
    budgets = sorted({k[3] for k in held})
    if not fit_rows or not held_ids:
        return []
    # "none": every problem alike, so the table is one bin holding the single best strategy per budget
    estimates = {**LOOKUP_ESTIMATES, "none": lambda r, k: 0.0}
    configs = [(e, f"{k} quantile bins", "quantile", k) for e in LOOKUP_ESTIMATES for k in (5, 3)]
    configs += [("oracle pass@1", "absolute (easy/medium/hard)", "absolute", 5), ("none", "one bin", "quantile", 1)]
    out = []
    for estimate, bins_label, binning, k in configs:
        est = {pid: estimates[estimate](pool, probes) for pid, pool in pools.items()}
        table = fit_table([{**r, "lookup_estimate": est[r["problem_id"]]} for r in fit_rows], binning, k=k,
                          difficulty_key="lookup_estimate", difficulty=estimate)
        acc, n = {}, {}
        for b in budgets:
            right = []
            for pid in held_ids:
                if est.get(pid) is None or (cell := table.cell(table.bin_of(est[pid]), b)) is None:
                    continue
                c = cell["choice"]
                key = (pid, c["strategy"], params_key(c.get("params")), b)
                if key in held:
                    right.append(held[key])
            if right:
                acc[b], n[b] = sum(right) / len(right), len(right)
        out.append({"estimate": estimate, "bins": bins_label, "accuracy": acc, "n": n,
                    "edges": table.binning.get("edges")})
    return out


def lookup_ablation_markdown(rows: Sequence[Mapping[str, Any]], policy: str | None = None) -> str:
    """table_lookup_ablation as Markdown, with auto as run for comparison; "" when it cannot be fitted."""
    abl = table_lookup_ablation(rows, policy)
    if not abl:
        return ""
    budgets = sorted({b for a in abl for b in a["accuracy"]})
    auto = accuracy_by_bin(current_rows(rows), "test", policy).get(ALL, {}).get("auto", {})
    lines = ["| difficulty estimate | bins | " + " | ".join(f"N={b}" for b in budgets) + " |",
             "|---" * (len(budgets) + 2) + "|"]
    for a in abl:
        cells = [f"{a['accuracy'][b]:.3f}" if b in a["accuracy"] else "-" for b in budgets]
        lines.append(f"| {a['estimate']} | {a['bins']} | " + " | ".join(cells) + " |")
    lines.append("| auto as run (probes paid, mean probe score) | 5 quantile bins | "
                 + " | ".join(f"{auto[b]['accuracy']:.3f}" if b in auto else "-" for b in budgets) + " |")
    return "\n".join(lines)


def spent_seconds(r: Mapping[str, Any]) -> float:
    """Wall seconds a results row took to produce: 0 for a pool subsample (the pool row carries them);
    `spent_seconds` where the row says (auto evaluated on the pool: only a live sub-run costs; a budget
    read off a bigger run of the same search: 0)."""
    if "subsampled_from" in r:
        return 0.0
    return float(r["spent_seconds"] if r.get("spent_seconds") is not None else (r.get("seconds") or 0))


def busy_seconds(rows: Sequence[Mapping[str, Any]]) -> float:
    """Wall seconds the machine spent producing these rows: the union of each row's interval (its
    `time`, the end, minus its spent seconds). Rows of problems run at once (`--problem-concurrency`)
    overlap, and each one's seconds include the turns it waited for the others, so their plain sum
    counts the same hour up to four times. A row without a readable time counts in full."""
    spans, loose = [], 0.0
    for r in rows:
        secs = spent_seconds(r)
        if secs <= 0:
            continue
        try:
            end = _dt.datetime.fromisoformat(str(r.get("time"))).timestamp()
        except ValueError:
            loose += secs
            continue
        spans.append((end - secs, end))
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total + loose


def what_ran_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Problems, levels and search seconds (wall time, overlaps counted once) per (policy, split), and
    the CPU-hours in all."""
    lines = ["| policy | split | problems | levels | search seconds |", "|---|---|---|---|---|"]
    for (pol, split) in sorted({(str(r.get("policy")), str(r.get("split"))) for r in rows}):
        mine = [r for r in rows if str(r.get("policy")) == pol and str(r.get("split")) == split]
        pids = {r.get("problem_id") for r in mine}
        levels = sorted({r.get("level") for r in mine if isinstance(r.get("level"), int)})
        secs = busy_seconds(mine)
        lines.append(f"| {pol} | {split} | {len(pids)} | {', '.join(map(str, levels))} | {secs:,.0f} |")
    total, summed = busy_seconds(rows), sum(spent_seconds(r) for r in rows)
    out = "\n".join(lines) + f"\n\nSearch time in all: {total / 3600:.2f} CPU-hours (2 cores)."
    if summed > total * 1.01:
        out += (f" The runs' own seconds add up to {summed / 3600:.2f} h: problems run at once overlap, "
                "and each run's seconds include the turns it waited for the others.")
    out += precision_sentence(rows)
    live = {id(r) for r in current_rows(rows)}
    stale = [r for r in rows if id(r) not in live]
    if stale:
        secs = sum(spent_seconds(r) for r in stale)
        out += (f" That includes {len(stale)} superseded row(s) ({secs:,.0f} s), rerun later (auto after a "
                "refitted strategy table or a new way of evaluating it, or a failed run); the figures use only "
                "the latest row of each run.")
    return out


def precision_sentence(rows: Sequence[Mapping[str, Any]]) -> str:
    """" The policy ran in ..." with the wall hours under each precision the rows record ("" when none
    does): the CPU kind changes it between sessions, and with it the speed (about 3x)."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        prec = r.get("precision")
        label = prec.get("policy") if isinstance(prec, Mapping) else None
        by.setdefault(label if isinstance(label, str) and label else "", []).append(r)
    unknown = busy_seconds(by.pop("", []))
    if not by:
        return ""
    parts = [f"{label} for {busy_seconds(mine) / 3600:.2f} h" for label, mine in sorted(by.items())]
    if unknown:
        parts.append(f"unrecorded for {unknown / 3600:.2f} h (rows from before the sweep recorded it)")
    return " The policy ran in " + "; ".join(parts) + "."


ADAPTIVE = ("early-stop-vote", "deepconf")  # strategies that may spend less than their budget


def compute_spent_markdown(rows: Sequence[Mapping[str, Any]], split: str | None = "test", policy: str | None = None) -> str:
    """What the adaptive strategies spent at each budget: generations and generated tokens (means over
    the problems), beside majority@N's tokens on the same problems. "" when none ran."""
    use = [r for r in rows if _usable(r) and (split is None or r.get("split") == split)
           and (policy is None or r.get("policy") == policy)]
    majority = {(r["problem_id"], int(r["budget"])): r for r in use if r["strategy"] == "majority" and not r.get("params")}
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in use:
        if r["strategy"] in ADAPTIVE:
            groups.setdefault((curve_label(r), int(r["budget"])), []).append(r)
    if not groups:
        return ""
    lines = ["| strategy | N | accuracy | generations spent | generated tokens | majority@N's tokens (same problems) |",
             "|---|---|---|---|---|---|"]
    for (label, n), rs in sorted(groups.items()):
        acc = sum(bool(r["correct"]) for r in rs) / len(rs)
        spent = sum(float(r.get("samples") or 0) for r in rs) / len(rs)
        tok = sum(float(r.get("generated_tokens") or 0) for r in rs) / len(rs)
        paired = [majority[(r["problem_id"], n)] for r in rs if (r["problem_id"], n) in majority]
        maj = (f"{sum(float(m.get('generated_tokens') or 0) for m in paired) / len(paired):,.0f} ({len(paired)})"
               if paired else "-")
        lines.append(f"| {label} | {n} | {acc:.3f} ({len(rs)}) | {spent:.2f} of {n} | {tok:,.0f} | {maj} |")
    return "\n".join(lines)


def scaling_report(rows: Sequence[Mapping[str, Any]], small: str = "qwen2.5-coder-0.5b",
                   big: str = "qwen2.5-coder-1.5b") -> str:
    """The study's figures as Markdown (README / closing note): what ran, the held-out table, the
    budget ratio, per-bin winners on both splits, auto's choices and the FLOPs-matched comparison."""
    if not rows:
        return "_No sweep results._"
    lines = ["### What ran", "", what_ran_markdown(rows), ""]
    rows = current_rows(rows)
    for split in ("val", "test"):
        if not any(r.get("split") == split and r.get("policy") == small for r in rows):
            continue
        lines += [f"### Accuracy of {small}, {split} split (problems per cell in brackets)", "",
                  accuracy_table_markdown(rows, split, small), ""]
    lines.append(budget_ratio_line(budget_ratio(rows, "test", small), "test"))
    if spent := compute_spent_markdown(rows, "test", small):
        lines += ["", f"### Compute the adaptive strategies spent ({small}, test split)", "",
                  "Means over the problems. early-stop-vote is read off each problem's pool of 16 (its samples in "
                  "order); on pools stored without per-sample tokens its tokens are exact at the budgets the selection "
                  "rules' rows know (1, 2, 4, 8, 16) and interpolated between them.",
                  "", spent]
    for ref in ("auto", "majority"):
        if paired := paired_table_markdown(rows, "test", small, reference=ref):
            lines += ["", f"### {ref} against each strategy at the same budget, problem by problem ({small}, test split)",
                      "", PAIRED_NOTE.format(ref=ref), "", paired]
    for split in ("val", "test"):
        wins = bin_winners(rows, split, small)
        if not wins:
            continue
        budgets = sorted({n for w in wins.values() for n in w})
        lines += ["", f"### Best strategy per oracle bin (Liu's absolute bins), {split} split", "",
                  "| bin | " + " | ".join(f"N={n}" for n in budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
        for b in _bin_order(wins, AbsoluteBins()):
            cells = [f"{', '.join(wins[b][n]['best']) or 'none solves any'} ({wins[b][n]['accuracy']:.2f}, {wins[b][n]['n']})"
                     if n in wins[b] else "-" for n in budgets]
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
    choices: dict[tuple[int, str], int] = {}
    for r in rows:
        if r.get("strategy") == "auto" and r.get("decision") and r.get("status") != "error":
            c = r["decision"].get("choice") or {}
            key = (int(r["budget"]), c.get("strategy", "?") if isinstance(c, dict) else str(c))
            choices[key] = choices.get(key, 0) + 1
    if choices:
        lines += ["", "**auto's choices:** " + "; ".join(f"N={n}: {s} x{v}" for (n, s), v in sorted(choices.items()))]
    pred = difficulty_predictors(rows, small)
    if pred.get("mean score") is not None:
        lines += ["", f"**Difficulty estimates** ({pred['problems']} problems, both splits): Spearman rank correlation with "
                  f"the oracle pass@1 of the pool's samples after the first {pred['probes']}: mean verifier score of those "
                  f"{pred['probes']} probes (what auto uses) {pred['mean score']:.2f}; the probes' answer agreement "
                  + (f"{pred['agreement']:.2f}." if pred.get("agreement") is not None else "undefined (all equal).")]
    if ablation := lookup_ablation_markdown(rows, small):
        lines += ["", f"### Where auto's gap comes from: a free table lookup ({small}, fitted on val, read on test)", "",
                  "Each row fits a strategy table on the validation problems with that difficulty estimate and "
                  "binning, then answers every held-out problem with the strategy its bin's cell chose at that "
                  "budget, at no probe cost (a search keeps its whole budget). Oracle pass@1 needs the gold answer: "
                  "it is the ceiling of a perfect estimate, not a method.", "", ablation]
    matched = flops_matched(rows, small, big)
    if matched:
        lines += ["", f"### FLOPs-matched: {big} against {small} with search (test split, shared problems)", "",
                  f"| {big} | accuracy | FLOPs | best {small} at no more FLOPs | accuracy | FLOPs |", "|---|---|---|---|---|---|"]
        for m in matched:
            lines.append(f"| {m['big']} | {m['big_accuracy']:.3f} ({m['n']}) | {m['big_flops']:.3g} | {m['small'] or '-'} | "
                         + (f"{m['small_accuracy']:.3f} | {m['small_flops']:.3g} |" if m["small"] else "- | - |"))
    return "\n".join(lines)


# ----- verifier quality (the oracle study: scripts/oracle_installment.sh) ---------------------------
QUALITY_RESULTS = ASSETS_DIR / "scaling" / "verifier-quality.jsonl"


def verifier_auroc(name: str | None) -> float | None:
    """The nominal step AUROC of an oracle verifier name ('oracle' = 1.0); None for other verifiers."""
    text = str(name or "")
    if text == "oracle":
        return 1.0
    if text.startswith("oracle@"):
        try:
            return float(text.split("@", 1)[1])
        except ValueError:
            return None
    return None


def rows_for_verifier(rows: Sequence[Mapping[str, Any]], verifier: str, policy: str) -> list[Mapping[str, Any]]:
    """The rows the Scaling tab shows for one verifier: the searching policy's rows under that verifier,
    plus every other policy's rows (the bigger policy's FLOPs-matched baseline)."""
    return [r for r in rows if r.get("policy") != policy or r.get("verifier") == verifier]


def problems_per_verifier(rows: Sequence[Mapping[str, Any]], policy: str) -> dict[str, int]:
    """verifier -> how many problems `policy` ran under it."""
    seen: dict[str, set] = {}
    for r in rows:
        if r.get("policy") == policy and r.get("verifier"):
            seen.setdefault(r["verifier"], set()).add(r.get("problem_id"))
    return {v: len(ids) for v, ids in seen.items()}


def study_verifier(rows: Sequence[Mapping[str, Any]], policy: str, prefer: str | None = None) -> str | None:
    """The verifier a study view opens on: the one `policy` ran the most problems under (`prefer` on a tie)."""
    counts = problems_per_verifier(rows, policy)
    return max(counts, key=lambda v: (counts[v], v == prefer, v)) if counts else None


def verifiers_in(rows: Sequence[Mapping[str, Any]], policy: str) -> list[str]:
    """Verifiers the policy was swept with: real ones first, then oracle levels from weakest to exact."""
    names = {r.get("verifier") for r in rows if r.get("policy") == policy and r.get("verifier")}
    return sorted(names, key=lambda v: (verifier_auroc(v) is not None, verifier_auroc(v) or 0.0, v))


def quality_curves(rows: Sequence[Mapping[str, Any]], split: str | None = "test", policy: str | None = None,
                   budget: int = 16) -> dict[str, dict[float, dict[str, float]]]:
    """curve label -> verifier AUROC -> {accuracy, n, lo, hi} at `budget`, over the oracle levels in rows, on
    the problems that every level has run (a paired comparison: the levels differ only in the verifier)."""
    out: dict[str, dict[float, dict[str, float]]] = {}
    cur = [r for r in current_rows(rows) if (split is None or r.get("split") == split)
           and (policy is None or r.get("policy") == policy) and verifier_auroc(r.get("verifier")) is not None
           and r.get("budget") == budget and _usable(r)]
    names = {r["verifier"] for r in cur}
    shared = set.intersection(*[{r["problem_id"] for r in cur if r["verifier"] == v} for v in names]) if names else set()
    for name in names:
        q = verifier_auroc(name)
        mine = [r for r in cur if r["verifier"] == name and r["problem_id"] in shared]
        for label, by_n in accuracy_by_bin(mine, split, policy).get(ALL, {}).items():
            if budget in by_n:
                out.setdefault(label, {})[q] = by_n[budget]
    return out


def quality_figure(rows: Sequence[Mapping[str, Any]], split: str | None = "test", policy: str | None = None,
                   budget: int = 16) -> go.Figure:
    """Accuracy at N=budget against the verifier's AUROC (noisy oracle levels, 1 = exact), one line per
    strategy: where search starts to pay, and where voting stops being the best it can do."""
    data = quality_curves(rows, split, policy, budget)
    fig = go.Figure()
    for label in sorted(data, key=_auto_last):
        qs = sorted(data[label])
        is_auto = label.startswith("auto")
        fig.add_trace(go.Scatter(
            x=qs, y=[data[label][q]["accuracy"] for q in qs], mode="lines+markers", name=label,
            line=dict(color=_color(label), width=4 if is_auto else 2), marker=dict(size=9 if is_auto else 6),
            error_y=_interval_bars([data[label][q] for q in qs], _color(label)),
            customdata=[[data[label][q]["n"], data[label][q]["lo"], data[label][q]["hi"]] for q in qs],
            hovertemplate=f"{esc(label)}<br>verifier AUROC %{{x}}<br>accuracy %{{y:.3f}} (95%: %{{customdata[1]:.2f}}-"
                          "%{customdata[2]:.2f})<br>%{customdata[0]} problems<extra></extra>"))
    _note_below(fig, INTERVAL_NOTE)
    fig.update_layout(height=480, margin=dict(l=50, r=20, t=50, b=150),
                      title=f"Accuracy at N={budget} against verifier quality (oracle with calibrated noise; "
                            f"{split or 'all'} split, the {max((c['n'] for d in data.values() for c in d.values()), default=0)}"
                            " problems every level ran)",
                      xaxis=dict(title="verifier step AUROC (0.5 = chance, 1 = the exact oracle)", range=[0.48, 1.02]),
                      yaxis=dict(range=[-0.02, 1.02], title="accuracy"), legend=dict(orientation="h", y=-0.25))
    if not data:
        fig.add_annotation(text="No verifier-quality sweep yet (scripts/oracle_installment.sh).", showarrow=False,
                           x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def quality_markdown(rows: Sequence[Mapping[str, Any]], split: str | None = "test", policy: str | None = None) -> str:
    """Per oracle level: auto's budget ratio and the accuracy table (README and the Scaling tab)."""
    parts = []
    for name in verifiers_in(rows, policy or ""):
        q = verifier_auroc(name)
        if q is None:
            continue
        mine = current_rows([r for r in rows if r.get("verifier") == name or r.get("policy") != policy])
        title = "exact oracle (AUROC 1)" if q >= 1.0 else f"oracle at AUROC {q:g}"
        part = (f"**{title}.** {budget_ratio_line(budget_ratio(mine, split, policy))}\n\n"
                + accuracy_table_markdown(mine, split, policy))
        if paired := paired_table_markdown(mine, split, policy, reference="majority"):
            part += "\n\n" + PAIRED_NOTE.format(ref="majority") + "\n\n" + paired
        parts.append(part)
    return "\n\n".join(parts)


def quality_report(rows: Sequence[Mapping[str, Any]], policy: str) -> str:
    """The verifier-quality study as Markdown (README): what ran, accuracy at N=16 against the oracle's
    AUROC, and per level the held-out table with auto's budget ratio."""
    rows = list(rows)
    cur = current_rows(rows)
    curves = quality_curves(cur, "test", policy, 16)
    levels = sorted({q for c in curves.values() for q in c})
    head = "| strategy at N=16 | " + " | ".join("exact" if q >= 1 else f"AUROC {q:g}" for q in levels) + " |"
    lines = [head, "|---" * (len(levels) + 1) + "|"]
    for label in sorted(curves, key=_auto_last):
        cells = [f"{curves[label][q]['accuracy']:.3f} ({curves[label][q]['n']})" if q in curves[label] else "-"
                 for q in levels]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return ("#### What ran\n\n" + what_ran_markdown(rows) + "\n\n#### Held-out accuracy at N=16 against verifier "
            "quality\n\n" + "\n".join(lines) + "\n\n#### Per verifier quality (held-out)\n\n"
            + quality_markdown(cur, "test", policy))
