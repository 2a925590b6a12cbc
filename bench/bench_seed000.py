"""Seed 000's timeline (the demo): first and last collected item vs the
ideal pipelined schedule (issue 2: within 10% of the ideal)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import seed000_demo  # noqa: E402


def main():
    rows, (first, last) = seed000_demo.main(["--quiet"])
    figures = {name: {"first_s": f, "last_s": l, "first_vs_ideal": f / first,
                      "last_vs_ideal": l / last} for name, f, l in rows}
    figures["ideal"] = {"first_s": first, "last_s": last}
    return {"seed000_timeline": figures}


if __name__ == "__main__":
    main()
