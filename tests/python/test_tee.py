"""sf.tee: itertools.tee whose copies may be read on different threads at
once; with a buffersize a copy that far ahead waits for the slowest open
copy; closed or collected copies stop counting; a wait that could never
end (same thread) raises instead of hanging."""
import gc
import itertools
import threading
import traceback

import pytest

import streamfutures as sf
from conftest import CountingInput


def read_on_threads(copies):
    results = [None] * len(copies)

    def read(i):
        results[i] = list(copies[i])

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(copies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("buffersize", [None, 1, 5, 256])
def test_copies_read_on_threads_at_once_each_see_everything_in_order(buffersize):
    source = CountingInput(range(20_000))
    copies = sf.tee(source, 4, buffersize=buffersize)
    assert read_on_threads(copies) == [list(range(20_000))] * 4
    assert source.pulled == 20_000


def test_a_copy_buffersize_ahead_waits_for_the_slowest():
    seen = [0, 0]
    worst = []

    def source():
        for i in range(3000):
            worst.append(i + 1 - min(seen))  # held once this item is out
            yield i

    left, right = sf.tee(source(), 2, buffersize=10)

    def read(copy, k):
        for _ in copy:
            seen[k] += 1

    threads = [threading.Thread(target=read, args=(c, k)) for k, c in enumerate((left, right))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [3000, 3000]
    assert max(worst) <= 10


def test_without_a_buffersize_it_keeps_everything_like_itertools_tee():
    a, b = sf.tee(iter(range(5000)))
    assert list(a) == list(range(5000))  # b is 5000 behind: nobody waits
    assert list(b) == list(range(5000))


@pytest.mark.parametrize("buffersize", [None, 1024])
def test_a_copy_takes_from_the_input_only_the_item_it_is_asked_for(buffersize):
    # itertools.tee's rule; fanout's consumers read ahead, tee's copies never
    source = CountingInput(range(100))
    a, b = sf.tee(source, buffersize=buffersize)
    assert [next(a) for _ in range(3)] == [0, 1, 2]
    assert source.pulled == 3
    assert next(b) == 0
    assert source.pulled == 3


def test_reading_ahead_of_copies_last_read_on_this_thread_raises_instead_of_hanging():
    a, b = sf.tee(itertools.count(), 2, buffersize=3)
    assert next(b) == 0
    assert [next(a) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(RuntimeError, match="buffersize=3 items ahead.*same thread"):
        next(a)
    assert next(b) == 1  # nothing was lost: reading the laggard makes room
    assert next(a) == 3


def test_a_closed_or_collected_copy_stops_counting():
    a, b, c = sf.tee(itertools.count(), 3, buffersize=2)
    next(b), next(c)
    b.close()
    del c
    gc.collect()
    assert [next(a) for _ in range(100)] == list(range(100))
    assert list(b) == []  # a closed copy is exhausted


def test_the_inputs_exception_is_raised_in_every_copy_at_its_position():
    def source():
        yield 1
        yield 2
        raise KeyError("input broke")

    a, b = sf.tee(source())
    for copy in (a, b):
        assert next(copy) == 1
        assert next(copy) == 2
        with pytest.raises(KeyError, match="input broke") as info:
            next(copy)
        assert any(f.name == "source" for f in traceback.extract_tb(info.value.__traceback__))
        assert list(copy) == []


class CodedError(Exception):
    """An __init__ that takes other arguments than its args."""

    def __init__(self, code):
        super().__init__("failed with code %d" % code)
        self.code = code


class RefusesItsArgs(Exception):
    def __new__(cls, message, *, made_here=False):
        if not made_here:
            raise TypeError("only made here")
        return super().__new__(cls, message)

    def __init__(self, message, *, made_here=False):
        super().__init__(message)


def raise_from_input(exc):
    def source():
        yield 1
        raise exc
    return source()


def test_each_copy_raises_its_own_copy_of_the_inputs_exception():
    cause = OSError(2, "no such file", "x.txt")
    try:
        try:
            raise cause
        except OSError as e:
            raise CodedError(7) from e
    except CodedError as e:
        original = e
    original.__notes__ = ["seen by the input"]  # add_note() from 3.11 does this
    copies = sf.tee(raise_from_input(original), 3)
    raised = []
    for copy in copies:
        assert next(copy) == 1
        with pytest.raises(CodedError) as info:
            next(copy)
        raised.append(info.value)
    assert len({id(e) for e in raised}) == 3 and original not in raised
    for exc in raised:
        assert str(exc) == "failed with code 7" and exc.args == original.args
        assert exc.code == 7 and exc.__notes__ == ["seen by the input"]
        assert exc.__cause__ is cause and exc.__suppress_context__
        assert any(f.name == "source" for f in traceback.extract_tb(exc.__traceback__))
    raised[0].__notes__.append("handled on one thread")  # a copy's notes are its own
    assert raised[1].__notes__ == ["seen by the input"]
    assert original.__notes__ == ["seen by the input"]


def test_a_builtins_fields_set_by_its_init_are_copied():
    for exc, field, value in [(OSError(2, "no such file", "x.txt"), "filename", "x.txt"),
                              (SystemExit(3), "code", 3),
                              (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), "reason", "bad")]:
        a, b = sf.tee(raise_from_input(exc))
        for copy in (a, b):
            next(copy)
            with pytest.raises(type(exc)) as info:
                next(copy)
            assert info.value is not exc and getattr(info.value, field) == value


class FileGone(OSError):
    def __init__(self, path):  # not the args OSError's __init__ takes
        super().__init__(2, "gone", path)
        self.path = path


def test_fields_only_a_keyword_or_a_builtin_base_sets_are_copied():
    holder = object()
    for exc, fields in [(AttributeError("no x", name="x", obj=holder), {"name": "x", "obj": holder}),
                        (NameError("no y", name="y"), {"name": "y"}),
                        (ImportError("no z", name="z", path="z.py"), {"name": "z", "path": "z.py"}),
                        (FileGone("f.txt"), {"filename": "f.txt", "errno": 2, "path": "f.txt"})]:
        a, b = sf.tee(raise_from_input(exc))
        for copy in (a, b):
            next(copy)
            with pytest.raises(type(exc)) as info:
                next(copy)
            assert info.value is not exc
            assert {f: getattr(info.value, f) for f in fields} == fields


def test_an_exception_that_cannot_be_made_again_is_raised_as_itself():
    original = RefusesItsArgs("made", made_here=True)
    a, b = sf.tee(raise_from_input(original))
    for copy in (a, b):
        next(copy)
        with pytest.raises(RefusesItsArgs) as info:
            next(copy)
        assert info.value is original


def test_copies_raising_the_inputs_exception_on_threads_at_once_each_get_one():
    barrier = threading.Barrier(4)
    copies = sf.tee(raise_from_input(KeyError("input broke")), 4)
    raised = [None] * 4

    def read(i):
        assert next(copies[i]) == 1
        barrier.wait()
        try:
            next(copies[i])
        except KeyError as exc:
            raised[i] = exc

    threads = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(type(e) is KeyError and e.args == ("input broke",) for e in raised)
    assert len({id(e) for e in raised}) == 4
    assert [c.input_error for c in copies] == raised
    for c in copies:
        c.close()
    assert [c.input_error for c in copies] == [None] * 4  # close() drops it


def test_arguments_like_itertools_tee():
    assert sf.tee(range(3), 0) == ()
    with pytest.raises(ValueError, match="n must be >= 0"):
        sf.tee(range(3), -1)
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        sf.tee(range(3), "2")
    with pytest.raises(TypeError, match="not iterable"):
        sf.tee(5)
    with pytest.raises(ValueError, match="buffersize must be None or > 0"):
        sf.tee(range(3), buffersize=0)
    assert len(sf.tee(range(3))) == 2


def test_a_copy_read_from_inside_its_own_input_raises():
    copies = []

    def source():
        yield 0
        yield next(copies[1])  # reads the ring it is feeding

    copies.extend(sf.tee(source(), 2, buffersize=4))
    assert next(copies[0]) == 0
    assert next(copies[1]) == 0  # copy 1 has read everything: only a new pull feeds it
    with pytest.raises(RuntimeError, match="inside its own input"):
        next(copies[0])


def test_copies_work_as_context_managers():
    a, b = sf.tee(range(10), 2, buffersize=2)
    with b:
        assert next(b) == 0
    assert list(a) == list(range(10))
