"""progress=: a real tqdm bar, moved from the engine's counters by one
polling thread that is joined when the map ends, is closed or is dropped.
Checked by the bar's own count and total, and by what it printed."""
import functools
import io
import sys

import pytest
from tqdm import tqdm

import streamfutures as sf
from proc_tasks import square

# tqdm's own monitor thread (it lives until a while after the last bar
# closes) would count as a thread this test left behind
tqdm.monitor_interval = 0


def double(x):
    return 2 * x


class Bars:
    """A tqdm factory that writes to a buffer and remembers its bars."""

    def __init__(self):
        self.made = []
        self.out = io.StringIO()

    def __call__(self, **kwargs):
        bar = tqdm(file=self.out, mininterval=0, **kwargs)
        self.made.append(bar)
        return bar


@pytest.mark.parametrize("executor", [sf.ThreadPoolExecutor, sf.ProcessPoolExecutor])
def test_a_bar_counts_every_result_and_takes_its_total_from_len(executor):
    bars = Bars()
    with executor(2) as ex:
        assert list(ex.map(square, range(300), progress=bars)) == [i * i for i in range(300)]
    (bar,) = bars.made
    assert (bar.total, bar.n, bar.desc) == (300, 300, "square")
    assert "300/300" in bars.out.getvalue()
    assert bar.disable  # closed: a bar made here is closed at the end


def test_an_input_without_len_has_no_total_and_still_counts():
    bars = Bars()
    with sf.ThreadPoolExecutor(2) as ex:
        assert sum(ex.map(double, (i for i in range(50)), progress=bars)) == 2450
    assert (bars.made[0].total, bars.made[0].n) == (None, 50)


def test_a_bar_given_by_the_caller_is_moved_and_left_open():
    out = io.StringIO()
    bar = tqdm(file=out, mininterval=0)
    with sf.ThreadPoolExecutor(2) as ex:
        list(ex.map(double, range(40), progress=bar))
    assert (bar.total, bar.n, bar.disable) == (40, 40, False)
    bar.close()


def test_progress_true_draws_a_tqdm_bar_on_stderr(capsys):
    with sf.ThreadPoolExecutor(2) as ex:
        list(ex.map(double, range(25), progress=True))
    err = capsys.readouterr().err
    assert "double" in err and "25/25" in err


def test_a_break_stops_the_bar_at_what_was_taken():
    bars = Bars()
    with sf.ThreadPoolExecutor(2) as ex:
        for i, value in enumerate(ex.map(double, range(10_000), progress=bars)):
            if i == 9:
                break
    assert bars.made[0].n == 10 and bars.made[0].disable


def test_a_dropped_map_closes_its_bar():
    bars = Bars()
    with sf.ThreadPoolExecutor(2) as ex:
        results = ex.map(double, range(100), progress=bars)
        assert next(results) == 0
        del results
    assert bars.made[0].disable and bars.made[0].n >= 1


def test_a_stream_shows_one_line_per_map_stage_named_after_its_function():
    bars = Bars()
    stream = sf.Stream(range(200), progress=bars).map(double).filter(bool).map(square)
    assert sum(stream) == sum((2 * i) ** 2 for i in range(1, 200))
    assert [b.desc for b in bars.made] == ["map(double)", "map(square)"]
    assert [(b.total, b.n) for b in bars.made] == [(200, 200), (None, 199)]


def test_a_stage_can_have_its_own_bar():
    bars = Bars()
    stream = sf.Stream(range(30)).map(double).map(square, progress=bars)
    assert list(stream) == [(2 * i) ** 2 for i in range(30)]
    assert [(b.desc, b.n) for b in bars.made] == [("map(square)", 30)]


def test_without_tqdm_progress_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with sf.ThreadPoolExecutor(1) as ex:
        with pytest.raises(ImportError, match=r"pip install streamfutures\[progress\]"):
            ex.map(double, range(3), progress=True)
        with pytest.raises(ImportError, match="tqdm"):
            iter(sf.Stream(range(3), progress=True).map(double))
        assert list(ex.map(double, range(3))) == [0, 2, 4]  # without, nothing changes


def test_a_wrong_progress_is_a_type_error():
    with sf.ThreadPoolExecutor(1) as ex:
        with pytest.raises(TypeError, match="progress must be True, a tqdm class or a tqdm bar"):
            ex.map(double, range(3), progress=42)


def test_a_partial_of_tqdm_is_a_bar_factory():
    out = io.StringIO()
    with sf.ThreadPoolExecutor(2) as ex:
        list(ex.map(double, range(12), progress=functools.partial(tqdm, file=out, mininterval=0)))
    assert "12/12" in out.getvalue()
