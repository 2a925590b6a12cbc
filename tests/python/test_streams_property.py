"""Property tests (hypothesis): fanout, tee and Stream give what their
serial equivalents give, over random inputs, consumers and buffer sizes."""
import collections
import itertools
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamfutures as sf

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

CONSUMERS = {
    "sum": sum,
    "list": list,
    "counter": collections.Counter,
    "max0": lambda it: max(it, default=None),
    "first3": lambda it: list(itertools.islice(it, 3)),
    "evens": lambda it: [x for x in it if x % 2 == 0],
    "any_neg": lambda it: any(x < 0 for x in it),
}

items = st.lists(st.integers(min_value=-1000, max_value=1000), max_size=400)
buffersizes = st.one_of(st.none(), st.integers(min_value=1, max_value=40))


@PROPERTY
@given(items, st.lists(st.sampled_from(sorted(CONSUMERS)), min_size=1, max_size=5),
       buffersizes)
def test_fanout_equals_each_consumer_on_its_own_copy(data, names, buffersize):
    consumers = [CONSUMERS[name] for name in names]
    expected = tuple(consumer(list(data)) for consumer in consumers)
    assert sf.fanout(iter(data), *consumers, buffersize=buffersize) == expected


@PROPERTY
@given(items, st.integers(min_value=1, max_value=5), buffersizes)
def test_tee_copies_read_on_threads_equal_the_input(data, n, buffersize):
    copies = sf.tee(iter(data), n, buffersize=buffersize)
    results = [None] * n

    def read(k):
        results[k] = list(copies[k])

    threads = [threading.Thread(target=read, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [data] * n


def tag(x):
    return ("t", x)


@PROPERTY
@given(items,
       st.lists(st.sampled_from(["tag", "filter_even", "flat_pair", "batch3", "str"]),
                min_size=1, max_size=4),
       st.integers(min_value=1, max_value=16), st.booleans())
def test_stream_equals_the_serial_pipeline(data, stages, buffersize, unordered):
    stream = sf.Stream(data)
    serial = list(data)
    for stage in stages:
        if stage == "tag":
            stream = stream.map(tag, workers=2, buffersize=buffersize, unordered=unordered)
            serial = [tag(x) for x in serial]
        elif stage == "str":
            stream = stream.map(repr, workers=3, buffersize=buffersize)
            serial = [repr(x) for x in serial]
        elif stage == "filter_even":
            stream = stream.filter(lambda x: hash(x) % 2 == 0)
            serial = [x for x in serial if hash(x) % 2 == 0]
        elif stage == "flat_pair":
            stream = stream.flat_map(lambda x: (x, x))
            serial = [y for x in serial for y in (x, x)]
        else:
            stream = stream.batch(3)
            serial = [tuple(serial[i:i + 3]) for i in range(0, len(serial), 3)]
    got = list(stream)
    if unordered and "tag" in stages:
        assert sorted(map(repr, got)) == sorted(map(repr, serial))
    else:
        assert got == serial
