"""Weighted best-of-N: sum the scores of solutions with equivalent answers, pick the largest sum."""

from .parallel import ParallelSampling


class WeightedBestOfN(ParallelSampling):
    name = "weighted-best-of-n"
    method = "weighted"
