"""A sample's confidence from its own tokens' log-probabilities (DeepConf, Fu et al. 2025): a window's
confidence is exp(mean log-probability of its tokens), a sample's is its weakest window. One definition
for the deepconf strategy, the confidence verifier and the trained PRM's features."""

from __future__ import annotations

import math
from typing import Sequence

WINDOW = 16  # tokens per confidence window (the paper's 2048 is for long chains of thought)


def window_means(logprobs: Sequence[float], window: int = WINDOW) -> list[float]:
    """Mean log-probability of every sliding window (one window, the whole mean, if the sample is shorter)."""
    lp = [float(x) for x in logprobs]
    if not lp:
        return []
    if len(lp) <= window:
        return [sum(lp) / len(lp)]
    run = sum(lp[:window])
    out = [run / window]
    for i in range(window, len(lp)):
        run += lp[i] - lp[i - window]
        out.append(run / window)
    return out


def window_confidences(logprobs: Sequence[float], window: int = WINDOW) -> list[float]:
    """exp(mean log-probability) of every sliding window."""
    return [math.exp(m) for m in window_means(logprobs, window)]


def lowest_window_confidence(logprobs: Sequence[float], window: int = WINDOW) -> float:
    means = window_means(logprobs, window)
    return math.exp(min(means)) if means else 0.0
