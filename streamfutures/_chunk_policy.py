"""How many items sf.map puts in one task of an executor that is not ours.

Every task costs the executor something fixed, whatever it runs: Dask's
scheduler, a message to an MPI rank, a pickle round trip to a worker
process.  A chunk's round trip (submitted to done) minus the time its
items took in the worker is that overhead; the policy sizes chunks so the
items' work is ``AMORTIZE`` times it, i.e. the overhead is at most about a
tenth of the time.  It starts at one item, so the first result comes back
after one task, and at most doubles per finished chunk, so a few slow
items are never bundled on the word of fast ones; a chunk that finds its
items slower shrinks the next ones at once.

Only round trips of chunks sent while fewer chunks than the executor's
workers were in flight measure the overhead: a chunk sent behind others
waits for a worker, and that wait is the workers being busy, not
overhead (counting it would grow chunks without end).

Bounds: a chunk's work stays under ``MAX_CHUNK_SECONDS`` (an ordered
result waits for its whole chunk, and the last chunks are the tail in
which some workers are idle), and its items under ``cap``, which the map
sets so that the window holds two chunks per worker (one running, one
queued behind it).  ``chunksize=N`` fixes the size; the map then never
asks the policy.
"""
import math
import threading

AMORTIZE = 10
MAX_CHUNK_SECONDS = 0.05
#: the overhead assumed before a round trip has measured it
FIRST_OVERHEAD_SECONDS = 0.001
#: weight of the newest measurement in the running averages
NEWEST_WEIGHT = 0.5


class ChunkSizer:
    def __init__(self, cap):
        self._cap = max(1, cap)
        self._size = 1
        self._per_item = None   # seconds one item takes in the worker (average)
        self._overhead = None   # seconds a task costs besides its items (average)
        self._lock = threading.Lock()  # chunks finish on the executor's threads

    @property
    def size(self):
        return self._size

    @property
    def overhead(self):
        return FIRST_OVERHEAD_SECONDS if self._overhead is None else self._overhead

    def observe(self, items, round_trip, worker_seconds, measures_overhead):
        """A chunk of ``items`` finished: ``round_trip`` seconds from its
        submit to its done, ``worker_seconds`` of them running its items."""
        with self._lock:
            per_item = worker_seconds / items
            self._per_item = per_item if self._per_item is None else (
                NEWEST_WEIGHT * per_item + (1 - NEWEST_WEIGHT) * self._per_item)
            if measures_overhead:
                overhead = max(0.0, round_trip - worker_seconds)
                self._overhead = overhead if self._overhead is None else (
                    NEWEST_WEIGHT * overhead + (1 - NEWEST_WEIGHT) * self._overhead)
            cost = max(self._per_item, 1e-9)
            wanted = min(AMORTIZE * self.overhead / cost, MAX_CHUNK_SECONDS / cost, self._cap)
            self._size = max(1, min(math.ceil(wanted), 2 * self._size))
