"""Progress bars (tqdm) for maps and streams, fed by the engine's counters.

One thread per progress display polls the counters of the maps it shows
(``MapIterator.stats()``: results taken, a lock round trip) a few times a
second and moves each bar; nothing runs per item, so a map with a bar costs
what it costs without one.  When the last map shown ends, is closed or is
collected, the engine calls back (``MapIterator._on_finish``): the thread is
stopped and joined there, each bar gets its final count, and the bars made
here are closed.  tqdm is an optional dependency: ``pip install
streamfutures[progress]``.
"""
import threading
import weakref

REFRESH_SECONDS = 0.1

MISSING_TQDM = ("progress= needs tqdm, which is not installed: "
                "pip install streamfutures[progress] (or pip install tqdm)")


def wanted(progress):
    """progress= asks for a bar (a tqdm bar has no plain truth value)."""
    return progress is not None and progress is not False


def name_of(fn):
    """A function's name, for a stage or a bar."""
    name = getattr(fn, "__name__", None)
    if name is None and hasattr(fn, "func"):  # functools.partial
        return "partial(%s)" % name_of(fn.func)
    return name or type(fn).__name__


def _tqdm_class():
    try:
        from tqdm import tqdm
    except ImportError as e:
        raise ImportError(MISSING_TQDM) from e
    return tqdm


def make_bar(progress, total, desc, position=None):
    """The bar for one map: progress is True (a tqdm bar), a tqdm class (or
    any callable making one, e.g. tqdm.auto.tqdm), or a bar made by the
    caller (kept open: it is the caller's).  (bar, owned)"""
    if progress is True:
        progress = _tqdm_class()
    if isinstance(progress, type) or (callable(progress) and not hasattr(progress, "update")):
        kwargs = {"total": total, "desc": desc}
        if position is not None:
            kwargs["position"] = position
        return progress(**kwargs), True
    if not hasattr(progress, "update"):
        raise TypeError("progress must be True, a tqdm class or a tqdm bar, not %r"
                        % type(progress).__name__)
    if getattr(progress, "total", None) is None and total is not None:
        progress.total = total
    return progress, False


def total_of(iterables):
    """The number of items when every input has a len() (the shortest)."""
    try:
        return min(len(it) for it in iterables)
    except (TypeError, ValueError):
        return None


class Progress:
    """Bars for some maps, moved by one polling thread; finish() once the
    last of them is over."""

    def __init__(self):
        self._entries = []  # [bar, owned, weakref to the map, shown count]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._move_lock = threading.Lock()  # a bar is moved by one thread at a time
        self._thread = None
        self._open = 0

    def show(self, iterator, bar, owned):
        entry = [bar, owned, weakref.ref(iterator), 0]
        with self._lock:
            self._entries.append(entry)
            self._open += 1
        iterator._on_finish(lambda taken: self._finished(entry, taken))
        with self._lock:  # one poller, started before any _finished can join it
            if self._thread is None and self._open > 0:
                self._thread = threading.Thread(target=self._poll, name="streamfutures-progress",
                                                daemon=True)
                self._thread.start()

    def _move(self, entry, taken):
        with self._move_lock:
            if taken > entry[3]:
                entry[0].update(taken - entry[3])
                entry[3] = taken

    def _poll(self):
        while not self._stop.wait(REFRESH_SECONDS):
            with self._lock:
                entries = list(self._entries)
            for entry in entries:
                iterator = entry[2]()
                if iterator is not None:
                    self._move(entry, iterator.stats()["items_out"])

    def _finished(self, entry, taken):
        with self._lock:
            if entry not in self._entries:
                return
            self._entries.remove(entry)
            self._open -= 1
            last = self._open == 0
            thread = self._thread if last else None
        if thread is not None:
            self._stop.set()
            if thread is not threading.current_thread():
                thread.join()
        self._move(entry, taken)
        if entry[1]:
            entry[0].close()
        else:
            entry[0].refresh()


def map_with_progress(progress, fn, iterables, start):
    """start() makes the map.  With progress, its bar is made first (so a
    missing tqdm fails the call before anything runs) and shown once the
    map exists; a map that could not be made leaves no bar open."""
    if not wanted(progress):
        return start()
    bar, owned = make_bar(progress, total_of(iterables), name_of(fn))
    try:
        iterator = start()
    except BaseException:
        if owned:
            bar.close()
        raise
    Progress().show(iterator, bar, owned)
    return iterator
