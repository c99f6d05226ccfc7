"""Plotly figures for a Trace: the search tree and the revision chains."""

from __future__ import annotations

import difflib
import html
import math
import re
import textwrap
from typing import Any, Iterable

import networkx as nx
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from ..trace import FINISHED, FOOLED_HIGH, FOOLED_LOW, PRUNED, SELECTED, Node, Trace, fooled_kind

# A FIXED scale: a score of 0.7 has the same colour in every run, so trees can be compared.
COLORSCALE = "RdYlGn"
UNSCORED_COLOR = "rgb(170,170,170)"
ROOT_COLOR = "rgb(70,110,200)"
FIT_COLUMNS = 44  # leaf columns that fit the page's tree panel (about 800 px) side by side
COLUMN_PX = 18
DENSE_COLUMNS = 16  # beyond this many columns an answer label is wider than its column
PRUNED_OPACITY = 0.45  # visible but quiet: pruned nodes also get a grey rim (PRUNED_OUTLINE)
PRUNED_OUTLINE = "rgb(120,120,120)"
LABELLED_LEAVES = 20  # more finished leaves than this and only the chosen one (and one per answer) is labelled
NODE_OPACITY = 1.0
SELECTED_OUTLINE = "rgb(20,20,20)"
EDGE_COLOR = "rgba(140,140,140,0.55)"
SELECTED_EDGE_COLOR = "rgb(30,30,30)"

HOVER_WIDTH = 64  # characters per hover line
HOVER_MAX_CHARS = 700  # long steps are cut in the hover (the inspector shows all)


def score_color(score: float | None) -> str:
    """The colour of a score on the fixed 0..1 scale (grey when unscored)."""
    if score is None:
        return UNSCORED_COLOR
    s = min(1.0, max(0.0, float(score)))
    return sample_colorscale(COLORSCALE, [s])[0]


SI_UNITS = (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))


def si_split(x: float) -> tuple[float, str]:
    """(value, unit) of x in SI units: 1.08e12 -> (1.08, "T"); below 1000 -> (x, "")."""
    for unit, div in SI_UNITS:
        if abs(x) >= div:
            return x / div, unit
    return x, ""


def strategy_label(strategy: Any, params: Any = None) -> str:
    """'beam (width=4)': a strategy and its parameters as every view names them (not escaped)."""
    if isinstance(params, dict) and params:
        return f"{strategy} (" + ", ".join(f"{k}={v}" for k, v in sorted(params.items())) + ")"
    return str(strategy)


def verifier_words(name: Any) -> str:
    """A verifier as a person reads it: the oracle says that it knows the answer (not escaped)."""
    text = "" if name is None else str(name)
    if text == "oracle" or text.startswith("oracle@"):
        quality = text.partition("@")[2]
        return "oracle (knows the answer)" + (f" at AUROC {quality}" if quality else "")
    return text


def esc(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


_LATEX_SYMBOLS = {r"\times": "×", r"\cdot": "·", r"\div": "÷", r"\pm": "±", r"\le": "≤", r"\leq": "≤",
                  r"\ge": "≥", r"\geq": "≥", r"\neq": "≠", r"\approx": "≈", r"\pi": "π", r"\infty": "∞",
                  r"\%": "%", r"\$": "$", r"\,": " ", r"\;": " ", r"\!": "", r"\quad": " ", r"\left": "",
                  r"\right": "", r"\dfrac": r"\frac", r"\tfrac": r"\frac"}
_FRAC = re.compile(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_SQRT = re.compile(r"\\sqrt\s*\{([^{}]*)\}")
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_TEXT = re.compile(r"\\(?:text|mathrm|mathbf|textbf|operatorname)\s*\{([^{}]*)\}")


def latex_to_text(text: str) -> str:
    """Maths written in LaTeX as readable plain text, for places HTML maths cannot go (plot hovers,
    the inspector's step column): \\frac{48}{2} -> 48/2, \\times -> ×, \\boxed{7} -> ⟦7⟧, math
    delimiters dropped. Not escaped: the caller escapes the result."""
    out = text or ""
    for a, b in ((r"\[", ""), (r"\]", ""), (r"\(", ""), (r"\)", ""), ("$$", "")):
        out = out.replace(a, b)
    # $...$ around LaTeX is maths; a plain "$5" is money and keeps its sign
    out = re.sub(r"\$(?!\d)([^$\n]*?\\[A-Za-z][^$\n]*?)\$", r"\1", out)
    for _ in range(3):  # nested fractions, inside out
        out = _FRAC.sub(lambda m: f"{_group(m.group(1))}/{_group(m.group(2))}", out)
    out = _SQRT.sub(lambda m: f"√{_group(m.group(1))}", out)
    out = _TEXT.sub(r"\1", out)
    out = _BOXED.sub(lambda m: f"⟦{m.group(1).strip()}⟧", out)
    for a in sorted(_LATEX_SYMBOLS, key=len, reverse=True):
        out = re.sub(re.escape(a) + r"(?![A-Za-z])", lambda _m, b=_LATEX_SYMBOLS[a]: b, out)
    out = re.sub(r"\^\{([^{}]*)\}", lambda m: "^" + _group(m.group(1)), out)
    out = out.replace("{", "").replace("}", "")
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def _group(x: str) -> str:
    x = x.strip()
    return x if re.fullmatch(r"[\w.]+", x) else f"({x})"


def wrap_html(text: str, width: int = HOVER_WIDTH, max_chars: int = HOVER_MAX_CHARS) -> str:
    """Render LaTeX as plain maths, escape, then wrap it with <br> (the only markup we add)."""
    text = latex_to_text(text or "")
    if len(text) > max_chars:
        text = text[:max_chars].rstrip() + " …"
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(para, width=width, replace_whitespace=False, drop_whitespace=True) or [""])
    return "<br>".join(esc(line) for line in lines)


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def answer_label(node: Node, gold_known: bool) -> str:
    """Escaped label for a finished leaf: its answer plus ✓/✗ when the gold answer is known."""
    ans = latex_to_text(node.answer) if node.answer not in (None, "") else "?"  # \\frac{5}{6} -> 5/6
    ans = ans if len(ans) <= 14 else ans[:13] + "…"
    mark = ""
    if gold_known and node.correct is not None:
        mark = " ✓" if node.correct else " ✗"
    return esc(ans) + mark


# ----- layout -------------------------------------------------------------------------------
def tidy_layout(trace: Trace) -> dict[int, tuple[float, float]]:
    """Top-down tidy tree: leaves on consecutive columns in depth-first order, each parent
    centred over its children, y = -depth. Built on the networkx view of the trace."""
    g = trace.to_networkx()
    tree = nx.DiGraph((u, v) for u, v, k in g.edges(data="kind") if k == "step")
    tree.add_nodes_from(g.nodes)
    pos: dict[int, tuple[float, float]] = {}
    depth = {n.id: n.depth for n in trace.nodes}
    next_x = 0.0
    # iterative post-order so deep trees do not hit the recursion limit
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:
        nid, done = stack.pop()
        kids = sorted(tree.successors(nid))
        if not done:
            stack.append((nid, True))
            for k in reversed(kids):
                stack.append((k, False))
            continue
        if not kids:
            x = next_x
            next_x += 1.0
        else:
            x = (pos[kids[0]][0] + pos[kids[-1]][0]) / 2.0
        pos[nid] = (x, -float(depth[nid]))
    # nodes not reachable from the root (should not happen) go on the far right
    for n in trace.nodes:
        if n.id not in pos:
            pos[n.id] = (next_x, -float(n.depth))
            next_x += 1.0
    return pos


def _labelled_leaves(trace: Trace, pos: dict[int, tuple[float, float]], n_cols: float) -> set[int]:
    """Finished leaves whose answer is written under them. All of them while the tree is narrow;
    beyond LABELLED_LEAVES finished leaves, the chosen leaf and the first leaf of each other answer;
    and once columns are narrower than a label (more than DENSE_COLUMNS), never two labels on
    neighbouring columns of one row (answers such as \\frac{5}{6} are wide): the rest show on hover."""
    done = [n for n in trace.nodes if n.status in (FINISHED, SELECTED)]
    if len(done) <= LABELLED_LEAVES and n_cols <= DENSE_COLUMNS:
        return {n.id for n in done}
    chosen = [n for n in done if n.status == SELECTED]
    seen = {n.answer for n in chosen}
    out = [n.id for n in chosen]
    for n in sorted(done, key=lambda n: n.id):
        if len(done) <= LABELLED_LEAVES and n.id not in out:
            out.append(n.id)
        elif n.answer not in seen:
            seen.add(n.answer)
            out.append(n.id)
    # a label's width in columns: ~6.5 px per character at font size 11, over the column's pixels
    col_px = COLUMN_PX if n_cols > FIT_COLUMNS else max(COLUMN_PX, 800.0 / n_cols)
    gold_known = trace.gold is not None
    half = {nid: (len(html.unescape(answer_label(trace.nodes[nid], gold_known))) * 6.5 + 8) / 2 / col_px for nid in out}
    kept: list[int] = []
    for nid in out:  # the chosen leaf first, so it always keeps its label
        x, y = pos[nid]
        if all(abs(pos[k][0] - x) >= max(2.0, half[k] + half[nid]) or pos[k][1] != y for k in kept):
            kept.append(nid)
    return set(kept)


# ----- hover text ---------------------------------------------------------------------------
def extra_number(n, key: str) -> float | None:
    """A finite number a method kept in node.extra, or None (an uploaded trace may hold anything there)."""
    v = n.extra.get(key) if isinstance(n.extra, dict) else None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


def node_hover(trace: Trace, n: Node) -> str:
    if n.parent is None:
        return "<b>question</b><br>" + wrap_html(trace.question, max_chars=400)
    parts = [
        f"<b>node {n.id}</b> · depth {n.depth} · round {n.round} · {esc(n.status)}",
        wrap_html(n.text),
        f"step score {_fmt(n.step_score)} · path score {_fmt(n.agg_score)} · {n.tokens} tokens",
    ]
    if n.answer is not None:
        verdict = "" if n.correct is None else (" (correct)" if n.correct else " (wrong)")
        parts.append("answer: " + esc(n.answer) + verdict)
    if n.true_label is not None:
        kind = fooled_kind(n.step_score, n.true_label, trace.threshold_for(n))
        parts.append("true label: " + ("right so far" if n.true_label else "wrong") + (
            f" · <b>verifier fooled: {esc(kind)}</b>" if kind else ""))
    if n.reason:
        parts.append("<i>" + wrap_html(n.reason) + "</i>")
    ex = n.extra if isinstance(n.extra, dict) else {}
    if (visits := extra_number(n, "visits")) is not None:  # MCTS
        parts.append(f"MCTS: {int(visits)} visits · value {_fmt(extra_number(n, 'value'))}"
                     + (" · a rollout step (simulated to value the step it grew from)" if ex.get("rollout") is True else ""))
    if (weight := extra_number(n, "weight")) is not None:  # particle filter
        parts.append(f"particle weight {weight:.3f} · copied into {int(extra_number(n, 'copies') or 0)} slot(s)")
    look = ex.get("lookahead")
    if look:
        steps = look if isinstance(look, list) else [look]
        parts.append("lookahead: " + wrap_html(" ⏵ ".join(str(s) for s in steps), max_chars=300))
    return "<br>".join(parts)


def _line_xy(pairs: Iterable[tuple[int, int]], pos) -> tuple[list, list]:
    xs: list = []
    ys: list = []
    for a, b in pairs:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return xs, ys


def _colorbar_trace() -> go.Scatter:
    """An empty trace that only carries the colour bar of the fixed 0..1 score scale."""
    return go.Scatter(
        x=[None], y=[None], mode="markers", name="score scale", showlegend=False, hoverinfo="skip",
        marker=dict(
            colorscale=COLORSCALE, cmin=0.0, cmax=1.0, color=[0.5], showscale=True,
            colorbar=dict(title=dict(text="step score"), thickness=12, len=0.8, tickvals=[0, 0.25, 0.5, 0.75, 1]),
        ),
    )


# ----- the search tree ----------------------------------------------------------------------
FOOLED_STYLE = {  # overlay markers where the verifier's score disagrees with the step truth
    FOOLED_HIGH: dict(symbol="x-thin", size=13, line=dict(width=3, color="rgb(200,0,0)"), color="rgb(200,0,0)"),
    FOOLED_LOW: dict(symbol="circle-open", size=22, line=dict(width=2.5, color="rgb(0,140,60)"), color="rgb(0,140,60)"),
}


def tree_figure(trace: Trace, selected_node: int | None = None, height: int | None = None,
                show_truth: bool = True) -> go.Figure:
    """The search tree. Traces, by name: "steps" (edges), "selected path" (thick edges of the
    chosen solution), "nodes" (one marker per trace node, root included; customdata = node id),
    "score scale" (colour bar only), and with show_truth, where nodes carry true labels, one overlay
    per fooled kind ("rated high, wrong": red cross; "rated low, right": green ring; customdata =
    node ids). layout.meta holds {"selected_path": [...ids...], "fooled": {kind: [ids]}}."""
    pos = tidy_layout(trace)
    n_cols = max(1.0, max(x for x, _ in pos.values()) + 1)
    # beyond FIT_COLUMNS leaves the figure grows wider than the page (the app scrolls it
    # sideways) at COLUMN_PX per leaf, so N=64 stays 64 readable columns instead of one band
    width = int(COLUMN_PX * n_cols + 140) if n_cols > FIT_COLUMNS else None
    max_size = 11 if width else 24
    sel_path = trace.selected_path_ids()
    gold_known = trace.gold is not None

    normal_edges, sel_edges = [], []
    for n in trace.nodes:
        if n.parent is None:
            continue
        (sel_edges if (n.id in sel_path and n.parent in sel_path) else normal_edges).append((n.parent, n.id))

    fig = go.Figure()
    ex, ey = _line_xy(normal_edges, pos)
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", name="steps", hoverinfo="skip", showlegend=False,
                             line=dict(color=EDGE_COLOR, width=1.5)))
    sx, sy = _line_xy(sel_edges, pos)
    fig.add_trace(go.Scatter(x=sx, y=sy, mode="lines", name="selected path", hoverinfo="skip", showlegend=False,
                             line=dict(color=SELECTED_EDGE_COLOR, width=4.5)))

    xs, ys, colors, opac, sizes, lw, lc, labels, hovers, ids, symbols = ([] for _ in range(11))
    label_ids = _labelled_leaves(trace, pos, n_cols)
    for n in trace.nodes:
        x, y = pos[n.id]
        xs.append(x)
        ys.append(y)
        ids.append(n.id)
        is_root = n.parent is None
        colors.append(ROOT_COLOR if is_root else score_color(n.step_score))
        opac.append(PRUNED_OPACITY if n.status == PRUNED else NODE_OPACITY)
        on_path = n.id in sel_path
        clicked = selected_node is not None and n.id == selected_node
        ex = n.extra if isinstance(n.extra, dict) else {}
        rel, visits = ex.get("rel_weight"), ex.get("visits")
        if isinstance(rel, (int, float)) and n.status not in (FINISHED, SELECTED):  # a particle: size = weight
            size = max(7.0, min(24.0, 7 + 5 * float(rel)))
        elif isinstance(visits, (int, float)) and not is_root and n.status not in (FINISHED, SELECTED):
            size = max(8.0, min(24.0, 6 + 4 * math.sqrt(float(visits))))  # MCTS: size = visits
        else:
            size = 16 if is_root else (15 if n.status in (FINISHED, SELECTED) else 12)
        sizes.append(min(size, max_size))
        lw.append(4 if clicked else (2.5 if on_path else 0.5))
        lc.append("rgb(0,120,255)" if clicked else (SELECTED_OUTLINE if on_path else (
            PRUNED_OUTLINE if n.status == PRUNED else "rgb(255,255,255)")))
        symbols.append("diamond" if n.status in (FINISHED, SELECTED) else ("square" if is_root else "circle"))
        labels.append(answer_label(n, gold_known) if n.id in label_ids else "")
        hovers.append(node_hover(trace, n))

    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers+text", name="nodes", showlegend=False,
        customdata=ids, hovertext=hovers, hoverinfo="text", text=labels, textposition="bottom center",
        textfont=dict(size=11),
        marker=dict(color=colors, opacity=opac, size=sizes, symbol=symbols, line=dict(width=lw, color=lc)),
        hoverlabel=dict(align="left"),
    ))
    fooled: dict[str, list[int]] = {FOOLED_HIGH: [], FOOLED_LOW: []}
    if show_truth:
        for n in trace.nodes[1:]:
            kind = fooled_kind(n.step_score, n.true_label, trace.threshold_for(n))
            if kind:
                fooled[kind].append(n.id)
        for kind, nids in fooled.items():
            if nids:
                fig.add_trace(go.Scatter(
                    x=[pos[i][0] for i in nids], y=[pos[i][1] for i in nids], mode="markers", name=kind,
                    customdata=nids, hovertext=[node_hover(trace, trace.nodes[i]) for i in nids], hoverinfo="text",
                    marker=FOOLED_STYLE[kind], showlegend=True, hoverlabel=dict(align="left")))
    fig.add_trace(_colorbar_trace())

    max_depth = max(n.depth for n in trace.nodes)
    status = {"running": "running…", "cancelled": "stopped (partial tree)", "error": "failed"}.get(trace.status, "")
    title = f"{esc(trace.strategy)} · {len(trace.nodes) - 1} steps · round {trace.rounds}" + (f" · {status}" if status else "")
    title_x, legend_x = dict(x=0.01), dict(x=0.99, xanchor="right")
    if width:  # the app scrolls a wide tree to its chosen leaf (else the root): title and legend go there too
        sel = trace.selected()
        focus = ((pos[sel.id][0] if sel is not None else pos[0][0]) + 0.8) / (n_cols + 0.6)
        title_x = dict(x=max(0.0, focus - 0.01), xanchor="right", xref="paper")
        legend_x = dict(x=min(1.0, focus + 0.01), xanchor="left")
    fig.update_layout(
        title=dict(text=title, font=dict(size=14), **title_x),
        meta={"selected_path": sorted(sel_path), "n_nodes": len(trace.nodes), "fooled": fooled},
        legend=dict(orientation="h", y=1.0, yanchor="bottom", font=dict(size=11),
                    title=dict(text="verifier vs step truth: "), **legend_x),
        xaxis=dict(visible=False, range=[-0.8, n_cols - 0.2]),
        yaxis=dict(visible=False, range=[-max_depth - 0.7, 0.5]),
        margin=dict(l=10, r=10, t=36, b=10),
        plot_bgcolor="white",
        paper_bgcolor="white",
        hovermode="closest",
        clickmode="event",
        dragmode="pan",
        height=height or max(360, min(1400, 120 + 80 * max_depth)),
        width=width,
    )
    return fig


# ----- revision chains ----------------------------------------------------------------------
def _attempt_text(trace: Trace, leaf: Node) -> str:
    return "\n\n".join(trace.steps(leaf.id))


def change_summary(before: str, after: str, ans_before: str | None, ans_after: str | None) -> str:
    """One plain line on what changed between consecutive attempts (unescaped)."""
    ratio = difflib.SequenceMatcher(None, before, after).ratio()
    if ans_before != ans_after:
        head = f"answer {ans_before or '?'} → {ans_after or '?'}"
    else:
        head = f"same answer ({ans_after or '?'})"
    return f"{head}; {round(100 * (1 - ratio))}% of the text changed"


def revision_figure(trace: Trace) -> go.Figure:
    """Chains left to right, attempt by attempt; colour = the attempt's score; label = answer."""
    attempts = [n for n in trace.nodes if n.attempt is not None and n.status in (FINISHED, SELECTED)]
    fig = go.Figure()
    if not attempts:
        fig.add_annotation(text=f"No revision chains in this run (strategy: {esc(trace.strategy)}).",
                           showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False), height=200,
                          margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="white", meta={"n_attempts": 0})
        return fig
    gold_known = trace.gold is not None
    by_id = {n.id: n for n in attempts}
    chains = sorted({n.chain if n.chain is not None else 0 for n in attempts})
    row = {c: i for i, c in enumerate(chains)}
    pos = {n.id: (float(n.attempt), -float(row[n.chain if n.chain is not None else 0])) for n in attempts}

    # links: explicit revision links, else consecutive attempts of a chain
    links = [(r.src, r.dst) for r in trace.revisions if r.src in by_id and r.dst in by_id]
    if not links:
        for c in chains:
            seq = sorted((n for n in attempts if (n.chain or 0) == c), key=lambda n: n.attempt)
            links += [(a.id, b.id) for a, b in zip(seq, seq[1:])]
    lx, ly = _line_xy(links, pos)
    fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", name="revisions", hoverinfo="skip", showlegend=False,
                             line=dict(color=EDGE_COLOR, width=2)))
    # what changed, on the middle of each link
    mx, my, mh = [], [], []
    for a, b in links:
        na, nb = by_id[a], by_id[b]
        (x0, y0), (x1, y1) = pos[a], pos[b]
        mx.append((x0 + x1) / 2)
        my.append((y0 + y1) / 2)
        mh.append(esc(change_summary(_attempt_text(trace, na), _attempt_text(trace, nb), na.answer, nb.answer)))
    fig.add_trace(go.Scatter(x=mx, y=my, mode="markers", name="changes", showlegend=False,
                             marker=dict(symbol="triangle-right", size=10, color="rgb(120,120,120)"),
                             hovertext=mh, hoverinfo="text"))

    xs, ys, colors, labels, hovers, ids, lw = ([] for _ in range(7))
    for n in attempts:
        x, y = pos[n.id]
        xs.append(x)
        ys.append(y)
        ids.append(n.id)
        colors.append(score_color(n.agg_score if n.agg_score is not None else n.step_score))
        score = n.agg_score if n.agg_score is not None else n.step_score
        labels.append(answer_label(n, gold_known) + f"<br>{_fmt(score)}")
        lw.append(3 if n.status == SELECTED else 0.5)
        hovers.append(
            f"<b>chain {n.chain} · attempt {n.attempt + 1}</b> · {esc(n.status)}<br>"
            + wrap_html(_attempt_text(trace, n), max_chars=900)
            + f"<br>score {_fmt(score)} · answer {esc(n.answer or '?')}"
        )
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers+text", name="attempts", showlegend=False, customdata=ids,
        text=labels, textposition="bottom center", hovertext=hovers, hoverinfo="text",
        marker=dict(color=colors, size=22, symbol="square", line=dict(width=lw, color=SELECTED_OUTLINE)),
        hoverlabel=dict(align="left"),
    ))
    fig.add_trace(_colorbar_trace())
    n_att = max(n.attempt for n in attempts) + 1
    fig.update_layout(
        title=dict(text="revision chains: attempt 1 → " + str(n_att) + "<br><sup>each row is one chain, attempts left "
                        "to right, colour = the attempt's score; hover a triangle to see what changed</sup>",
                   x=0.01, font=dict(size=14)),
        xaxis=dict(tickmode="array", tickvals=list(range(n_att)), ticktext=[f"attempt {i + 1}" for i in range(n_att)],
                   range=[-0.6, n_att - 0.4], showgrid=False, zeroline=False),
        yaxis=dict(tickmode="array", tickvals=[-row[c] for c in chains], ticktext=[f"chain {c}" for c in chains],
                   range=[-len(chains) + 0.4, 0.6], showgrid=False, zeroline=False),
        margin=dict(l=10, r=10, t=56, b=10), plot_bgcolor="white", hovermode="closest",
        height=max(240, 140 + 90 * len(chains)), meta={"n_attempts": len(attempts)},
    )
    return fig
