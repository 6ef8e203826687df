"""Settings of how web processes use the local model server: its timeouts, how many
requests it takes at once, the fair queue of the others, and how many chat searches share
its cores at once (README "Chat", "Model queue"). Read here and imported by settings.py,
which is at its line limit.
"""

from __future__ import annotations

from apps.config.env import Env

env = Env()

# Seconds to connect, and to wait for each streamed piece of the answer.
LOCAL_LLM_CONNECT_TIMEOUT = env.seconds("LOCAL_LLM_CONNECT_TIMEOUT", default=5.0)
LOCAL_LLM_TIMEOUT = env.seconds("LOCAL_LLM_TIMEOUT", default=60.0)

# How many requests the local model server answers at once (llama.cpp: its --parallel
# slots, 1 by default; vLLM: the sequences it batches). The rest wait in the fair queue
# (apps/routing/model_queue.py), in the cache's Redis, shared by every web process.
LOCAL_LLM_SLOTS = env.integer("LOCAL_LLM_SLOTS", default=1)
# Requests that may wait at once; one more is told "The model is busy; try again in a
# minute." at once (503 with Retry-After before a stream has begun). 0: nobody waits.
MODEL_QUEUE_MAX_LENGTH = env.integer("MODEL_QUEUE_MAX_LENGTH", default=20, low=0)
# The longest a request waits for the model before it is told the same.
MODEL_QUEUE_MAX_WAIT_SECONDS = env.seconds("MODEL_QUEUE_MAX_WAIT_SECONDS", default=60.0)
# How long a slot or a place outlives the process that held it (one that crashed): its
# holder pushes the deadline on every third of this while it lives.
MODEL_QUEUE_SLOT_TTL_SECONDS = env.seconds("MODEL_QUEUE_SLOT_TTL_SECONDS", default=15.0, most=600)
# Chat searches one web process runs at once (apps/assistant/searching.py): the others
# wait their turn, their place in the model's line already shown. 0: no limit.
CHAT_SEARCHES_AT_ONCE = env.integer("CHAT_SEARCHES_AT_ONCE", default=2, low=0)
