"""Best-of-N: sample N solutions, return the one the verifier scores highest."""

from .parallel import ParallelSampling


class BestOfN(ParallelSampling):
    name = "best-of-n"
    method = "best"
