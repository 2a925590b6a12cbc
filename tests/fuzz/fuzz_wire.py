"""The parent's decoder of worker replies (src/python/wire.c), fed what a
broken or hostile worker might send: valid encodings of many values, then
flipped bytes, extreme length fields, cut or extended payloads, and every
kind.  The decoder must give a value or an exception for the item (never
crash, never read outside the bytes, never raise SystemExit or
KeyboardInterrupt as such).  A seeded random-mutation driver.

Pickled replies get valid pickles of the wrong thing (a value where an
exception belongs), cut pickles, and pickles that exit when loaded, but
no random bytes: pickle itself is documented as unsafe on untrusted data
(a hostile pickle runs code), so mutating its opcodes tests CPython's
pickle, not this decoder.

Usage: python tests/fuzz/fuzz_wire.py ROUNDS [SEED]"""
import random
import struct
import sys

from streamfutures import _engine

SAMPLES = [
    None, True, False, 0, -1, 2**63 - 1, -2**63, 2**64, 3.5, float("inf"), "", "text",
    "\udcff lone surrogate", "ü" * 40, b"", b"\0" * 33, [], (), [1, "a", None, 2.5, b"x"],
    (True, -7, "ü"), [[1], 2], {"a": 1}, {1, 2}, ValueError("boom"), list(range(50)),
]
EXTREME = [0, 1, 4, 5, 8, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.randrange(5)
        if choice == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif choice == 1 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice == 2 and len(data) >= 4:
            at = rng.randrange(len(data) - 3)
            data[at:at + 4] = struct.pack("<I", rng.choice(EXTREME))
        elif choice == 3:
            del data[rng.randrange(len(data) + 1):]
        else:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(9)))
    return bytes(data)


class ExitsWhenLoaded:
    def __reduce__(self):
        return (sys.exit, (3,))


PICKLED_KINDS = [1, 2, 0x100 | 1, 0x100 | 2]  # wire.c: PICKLED, EXCEPTION, | TASK_UNPICKLING_FAILED
OTHER_KINDS = [0] + list(range(3, 16)) + [0x100 | 10]


def reply(rng, encoded, pickles):
    kind, data = rng.choice(encoded)
    if kind in PICKLED_KINDS or rng.randrange(8) == 0:
        data = rng.choice(pickles)
        if rng.randrange(3) == 0:
            data = data[:rng.randrange(len(data) + 1)]
        return rng.choice(PICKLED_KINDS), data
    if rng.randrange(4) == 0:
        kind = rng.choice(OTHER_KINDS)
    return kind, mutate(rng, data)


def main():
    import pickle

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    encoded = [_engine.wire_encode(value) for value in SAMPLES]
    pickles = [pickle.dumps(v, protocol=5) for v in SAMPLES + [ExitsWhenLoaded(), KeyError("k")]]
    decoded = failed_items = 0
    for _ in range(rounds):
        kind, data = reply(rng, encoded, pickles)
        try:
            value, failed = _engine.wire_decode(kind, data)
        except Exception:
            # only when even reporting the failure failed (e.g. no memory)
            raise AssertionError("the decoder raised instead of failing the item")
        if failed and not isinstance(value, BaseException):
            raise AssertionError("a failed item without its exception: %r" % (value,))
        if isinstance(value, (SystemExit, KeyboardInterrupt)):
            raise AssertionError("an unpickling exit reached the caller as such")
        decoded += 1
        failed_items += failed
    print("fuzz_wire: %d rounds, %d decoded, %d items failed cleanly, no fault"
          % (rounds, decoded, failed_items))


if __name__ == "__main__":
    main()
