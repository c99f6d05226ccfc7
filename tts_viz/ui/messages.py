"""The two kinds of one-line message the app's panels show; the text is escaped here."""

from __future__ import annotations

from ..viz.figures import esc


def error_html(msg: str) -> str:
    return f'<div class="tts-error" style="color:#b00020;font-weight:bold">⚠ {esc(msg)}</div>'


def status_html(msg: str) -> str:
    return f'<div class="tts-status">{esc(msg)}</div>'
