"""The peers, each behind one small adapter, so every workload in
bench_peers.py drives them the same way.

A peer has a name, the kinds of pool it offers ("threads", "processes";
a kind it lacks maps to the reason, which the table prints as n/a), and
`open(kind, workers)`: a context manager that yields a function
`imap(fn, iterable, chunksize)` returning an iterator of results.  A peer
whose map takes a chunk size says so (`chunked`); the benchmark then tries
several and keeps the best, as a user tuning it would.  `pipeline(kind,
workers, fns, iterable)` chains stages: natively where the peer has
pipelines, else by feeding one pool's map into the next pool's.

Each adapter uses the peer as its documentation says to use it for lazy or
streaming work (joblib's return_as="generator", mpire's imap, pebble's
map(...).result(), pypeln's stages with maxsize, streamable's concurrency).
"""
import contextlib
import multiprocessing
import multiprocessing.pool
import concurrent.futures as cf

BOTH = ("threads", "processes")


class Peer:
    name = ""
    kinds = BOTH
    missing = {}          # kind -> why this peer cannot run it
    chunked = ()          # kinds whose map takes a chunk size
    ordered = True
    module = None         # what must import for this peer to run at all

    def open(self, kind, workers):
        raise NotImplementedError

    @contextlib.contextmanager
    def pipeline(self, kind, workers, fns, iterable, chunksize=None):
        """Each stage its own pool, the next stage's input the previous
        stage's result iterator."""
        with contextlib.ExitStack() as stack:
            items = iterable
            for fn in fns:
                imap = stack.enter_context(self.open(kind, workers))
                items = imap(fn, items, chunksize)
            yield items


class StreamFutures(Peer):
    name = "streamfutures"
    module = "streamfutures"

    @contextlib.contextmanager
    def open(self, kind, workers):
        import streamfutures as sf
        cls = sf.ThreadPoolExecutor if kind == "threads" else sf.ProcessPoolExecutor
        with cls(workers) as ex:
            yield lambda fn, items, chunksize=None: ex.map(fn, items)

    @contextlib.contextmanager
    def pipeline(self, kind, workers, fns, iterable, chunksize=None):
        import streamfutures as sf
        stream = sf.Stream(iterable)
        for fn in fns:
            stream = stream.map(fn, workers=workers, processes=kind == "processes")
        yield iter(stream)


class StreamFuturesWideWindow(StreamFutures):
    """Our thread map with a window of 1024 items per worker instead of the
    default 32: what a user tuning it for trivial tasks would pass, as the
    chunked peers get their best chunk size."""
    name = "streamfutures buffersize=1024/worker"
    kinds = ("threads",)
    missing = {"processes": "the process pool's default window is already 4096 per worker "
                            "(the streamfutures row)"}

    @contextlib.contextmanager
    def open(self, kind, workers):
        import streamfutures as sf
        with sf.ThreadPoolExecutor(workers) as ex:
            yield lambda fn, items, chunksize=None: ex.map(fn, items, buffersize=1024 * workers)

    @contextlib.contextmanager
    def pipeline(self, kind, workers, fns, iterable, chunksize=None):
        import streamfutures as sf
        stream = sf.Stream(iterable)
        for fn in fns:
            stream = stream.map(fn, workers=workers, buffersize=1024 * workers)
        yield iter(stream)


class Stdlib(Peer):
    name = "concurrent.futures"
    module = "concurrent.futures"
    chunked = ("processes",)

    @contextlib.contextmanager
    def open(self, kind, workers):
        if kind == "threads":
            with cf.ThreadPoolExecutor(workers) as ex:
                yield lambda fn, items, chunksize=None: ex.map(fn, items)
        else:
            with cf.ProcessPoolExecutor(workers) as ex:
                yield lambda fn, items, chunksize=1: ex.map(fn, items, chunksize=chunksize or 1)


class MultiprocessingPool(Peer):
    name = "multiprocessing.Pool.imap"
    module = "multiprocessing"
    chunked = BOTH

    @contextlib.contextmanager
    def open(self, kind, workers):
        cls = multiprocessing.pool.ThreadPool if kind == "threads" else multiprocessing.Pool
        pool = cls(workers)
        try:
            yield lambda fn, items, chunksize=1: pool.imap(fn, items, chunksize or 1)
        finally:
            # a pool whose worker was killed never finishes its map, and
            # close()+join() would wait on it forever: terminate is the
            # documented way out either way
            pool.terminate()
            pool.join()


class Joblib(Peer):
    name = "joblib"
    module = "joblib"

    @contextlib.contextmanager
    def open(self, kind, workers):
        import joblib
        backend = "threading" if kind == "threads" else "loky"
        with joblib.Parallel(n_jobs=workers, backend=backend, return_as="generator") as parallel:
            yield lambda fn, items, chunksize=None: parallel(joblib.delayed(fn)(x) for x in items)


class Mpire(Peer):
    name = "mpire"
    module = "mpire"
    chunked = BOTH

    @contextlib.contextmanager
    def open(self, kind, workers):
        import mpire
        start = "threading" if kind == "threads" else None
        kwargs = {"start_method": start} if start else {}
        with mpire.WorkerPool(n_jobs=workers, keep_alive=True, **kwargs) as pool:
            yield lambda fn, items, chunksize=1: pool.imap(fn, items, chunk_size=chunksize or 1)


class Pebble(Peer):
    name = "pebble"
    module = "pebble"
    chunked = BOTH

    @contextlib.contextmanager
    def open(self, kind, workers):
        import pebble
        cls = pebble.ThreadPool if kind == "threads" else pebble.ProcessPool
        with cls(max_workers=workers) as pool:
            yield lambda fn, items, chunksize=1: iter(
                pool.map(fn, items, chunksize=chunksize or 1).result())


class Loky(Peer):
    name = "loky"
    module = "loky"
    kinds = ("processes",)
    missing = {"threads": "loky has process pools only"}
    chunked = ("processes",)

    @contextlib.contextmanager
    def open(self, kind, workers):
        import loky
        ex = loky.get_reusable_executor(max_workers=workers)
        try:
            yield lambda fn, items, chunksize=1: ex.map(fn, items, chunksize=chunksize or 1)
        finally:
            ex.shutdown(wait=True)


class Pypeln(Peer):
    name = "pypeln"
    module = "pypeln"
    ordered = False       # its map stages yield as completed; pl.*.ordered sorts everything

    def _stage(self, kind, fn, items, workers):
        import pypeln as pl
        flavour = pl.thread if kind == "threads" else pl.process
        return flavour.map(fn, items, workers=workers, maxsize=2 * workers)

    @contextlib.contextmanager
    def open(self, kind, workers):
        yield lambda fn, items, chunksize=None: iter(self._stage(kind, fn, items, workers))

    @contextlib.contextmanager
    def pipeline(self, kind, workers, fns, iterable, chunksize=None):
        stage = iterable
        for fn in fns:
            stage = self._stage(kind, fn, stage, workers)
        yield iter(stage)


class Streamable(Peer):
    name = "streamable"
    module = "streamable"

    @contextlib.contextmanager
    def open(self, kind, workers):
        from streamable import stream
        if kind == "threads":
            yield lambda fn, items, chunksize=None: iter(stream(items).map(fn, concurrency=workers))
        else:
            # its documented way to use processes: hand it an executor
            with cf.ProcessPoolExecutor(workers) as ex:
                yield lambda fn, items, chunksize=None: iter(stream(items).map(fn, concurrency=ex))

    @contextlib.contextmanager
    def pipeline(self, kind, workers, fns, iterable, chunksize=None):
        from streamable import stream
        with contextlib.ExitStack() as stack:
            s = stream(iterable)
            for fn in fns:
                concurrency = workers
                if kind == "processes":
                    concurrency = stack.enter_context(cf.ProcessPoolExecutor(workers))
                s = s.map(fn, concurrency=concurrency)
            yield iter(s)


PEERS = [StreamFutures(), StreamFuturesWideWindow(), Stdlib(), MultiprocessingPool(), Joblib(), Mpire(), Pebble(), Loky(),
         Pypeln(), Streamable()]
BY_NAME = {peer.name: peer for peer in PEERS}
