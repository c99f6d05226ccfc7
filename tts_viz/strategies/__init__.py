"""Search strategies: one file each, one protocol (see base.py)."""

from __future__ import annotations

from .auto import AutoStrategy
from .beam import BeamSearch
from .deepconf import DeepConf
from .best_of_n import BestOfN
from .dvts import DVTS
from .early_stop_vote import EarlyStopVote
from .lookahead import LookaheadSearch
from .majority import MajorityVote
from .mcts import MCTS
from .particle_filter import ParticleFilter
from .particle_gibbs import ParticleGibbs
from .revisions import Revisions
from .weighted_best_of_n import WeightedBestOfN

STRATEGIES = {
    cls.name: cls
    for cls in (MajorityVote, BestOfN, WeightedBestOfN, BeamSearch, DVTS, LookaheadSearch, Revisions, EarlyStopVote,
                DeepConf, ParticleFilter, ParticleGibbs, MCTS, AutoStrategy)
}


def get_strategy(name: str):
    return STRATEGIES[name]()
