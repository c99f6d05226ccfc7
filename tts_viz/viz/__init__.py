"""Pure views: Trace in, plotly Figure or HTML string out. No gradio, no model imports.

Model text is untrusted: every string that came from a model (or an uploaded trace) goes
through `html.escape` before it reaches plotly hover/text (which renders a subset of HTML)
or an HTML panel.
"""

from __future__ import annotations

from .figures import (
    COLORSCALE,
    UNSCORED_COLOR,
    revision_figure,
    score_color,
    tidy_layout,
    tree_figure,
)
from .panels import (
    compare_html,
    decision_html,
    inspector_html,
    prm_report_html,
    scores_table_html,
    summary_html,
)

__all__ = [
    "COLORSCALE",
    "UNSCORED_COLOR",
    "compare_html",
    "decision_html",
    "inspector_html",
    "prm_report_html",
    "revision_figure",
    "score_color",
    "scores_table_html",
    "summary_html",
    "tidy_layout",
    "tree_figure",
]
