"""Settings of the hybrid fusion (README "Retrieval"), chosen by the worst of the dev sets
(evaluate_fusion). Read here and imported by settings.py, which is at its line limit.
"""

from __future__ import annotations

from apps.config.env import Env

env = Env()

# The dense share of the fused score (the keyword list gets the rest), before the heading
# match is added (apps/search/fusion.py QueryFusion).
RETRIEVAL_DENSE_WEIGHT = env.number(
    "RETRIEVAL_DENSE_WEIGHT", default=0.6, low=0.0, high=1.0, want="a number from 0 to 1"
)
# What a chunk gains when its document title and section heading hold all of the
# question's content words (proportionally for a share of them); 0 switches it off.
RETRIEVAL_HEADING_WEIGHT = env.number(
    "RETRIEVAL_HEADING_WEIGHT", default=0.2, low=0.0, high=1.0, want="a number from 0 to 1"
)
