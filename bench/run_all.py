"""Run every benchmark in one process run, print the figures and write
bench/results/results.json (and a PNG per figure when matplotlib is
installed)."""
import json
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_map  # noqa: E402
import bench_memory  # noqa: E402
import bench_process  # noqa: E402
import bench_progress  # noqa: E402
import bench_seed000  # noqa: E402
import bench_streams  # noqa: E402
import bench_submit  # noqa: E402
import bench_window  # noqa: E402


def main():
    results = {"python": sys.version.split()[0], "machine": platform.machine(),
               "cpus": os.cpu_count()}
    for module in (bench_map, bench_submit, bench_memory, bench_seed000, bench_process,
                   bench_streams, bench_progress, bench_window):
        print()
        results.update(module.main())
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "results.json")
    with open(path, "w") as out:
        json.dump(results, out, indent=2, sort_keys=True)
    print("\nwrote bench/results/results.json")
    try:
        import matplotlib
    except ImportError:
        print("(matplotlib not installed: no plots)")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for key, unit in (("map_us_per_item", "us per item"), ("submit_us_per_future", "us per future"),
                      ("seed003_us_per_item", "us per item, sum and max of one iterator")):
        fig, ax = plt.subplots(figsize=(6, 3))
        names = [n for n in results[key] if results[key][n] is not None]
        ax.barh(names, [results[key][n] for n in names])
        ax.set_xscale("log")
        ax.set_xlabel(unit + " (log scale)")
        fig.tight_layout()
        fig.savefig(os.path.join(HERE, "results", key + ".png"))
    print("wrote bench/results/*.png")


if __name__ == "__main__":
    main()
