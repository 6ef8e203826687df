"""Settings of the hybrid fusion (README "Retrieval"), chosen by the worst of the dev sets
(evaluate_fusion). Read here and imported by settings.py, which is at its line limit.
"""

from __future__ import annotations

from apps.config.env import Env

env = Env()

# The dense share of the fused score (the keyword list gets the rest), before the heading
# match is added (apps/search/fusion.py QueryFusion). 0.8 has the best worst split of the
# five dev sets (0.6 was chosen on four, before the django set).
RETRIEVAL_DENSE_WEIGHT = env.number(
    "RETRIEVAL_DENSE_WEIGHT", default=0.8, low=0.0, high=1.0, want="a number from 0 to 1"
)
# What a chunk gains when its document title and section heading hold all of the
# question's content words (proportionally for a share of them); 0 switches it off.
RETRIEVAL_HEADING_WEIGHT = env.number(
    "RETRIEVAL_HEADING_WEIGHT", default=0.2, low=0.0, high=1.0, want="a number from 0 to 1"
)

# The embedded store's graphs (apps/retrieval/store/owner.py GraphPolicy, README
# "Capacity"): the owner looks this often whether the store has grown enough for a new
# graph build, which runs in a child process over a copy of the shard while search goes
# on (it needs as much free disk again as the shard takes). 0: only `manage.py
# vectorstore --optimize` builds them.
VECTOR_GRAPH_CHECK_SECONDS = env.number(
    "VECTOR_GRAPH_CHECK_SECONDS", default=60.0, low=0.0, want="seconds, 0 or more"
)
# Build once the store holds this many points more than at the last build; 0: the shard's
# indexing threshold (VECTOR_EXACT_SEARCH_POINTS when it was created).
VECTOR_GRAPH_EVERY_POINTS = env.integer("VECTOR_GRAPH_EVERY_POINTS", default=0, low=0)
# After a failed build, the next automatic one waits this long.
VECTOR_GRAPH_RETRY_SECONDS = env.seconds("VECTOR_GRAPH_RETRY_SECONDS", default=3600.0)
# A filtered search matching up to this many points of a segment is exact (no graph), and
# a segment gets a graph from this size on; fixed when the store is created
# (apps/retrieval/store/protocol.py EXACT_SEARCH_POINTS).
VECTOR_EXACT_SEARCH_POINTS = env.integer("VECTOR_EXACT_SEARCH_POINTS", default=200_000, low=1)
# The embedded owner flushes its shard this often when it was written to, so a SIGKILL
# replays at most this much of the write-ahead log when it starts again; 0: only at a
# clean stop.
VECTOR_FLUSH_SECONDS = env.number("VECTOR_FLUSH_SECONDS", default=10.0, low=0.0, want="seconds")
