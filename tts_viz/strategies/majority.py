"""Majority vote: sample N solutions, return the most frequent (equivalent) answer.

The verifier, if any, only colours the tree here; it does not decide.
"""

from .parallel import ParallelSampling


class MajorityVote(ParallelSampling):
    name = "majority"
    needs_verifier = False
    method = "majority"
