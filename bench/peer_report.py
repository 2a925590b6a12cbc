"""What bench_peers.py writes: the JSON of every cell, a markdown table
(n/a reasons and notes as footnotes, so the table stays readable), and
matplotlib plots, one per workload plus one figure of them all."""
import importlib.metadata
import json
import os

TITLES = {
    "threads": "trivial tasks on threads",
    "processes": "trivial tasks on processes",
    "factorize": "seed 004: naive factorization",
    "first_result": "seed 000: first result, slow input",
    "memory": "peak memory over 5 M items",
    "pipeline": "3-stage pipeline, I/O-like stages",
    "crash": "a worker killed mid-map",
}
# (axis label, lower is better, log scale)
AXES = {
    "threads": ("us per item (lower is better)", True, True),
    "processes": ("us per item (lower is better)", True, True),
    "factorize": ("speedup over serial (higher is better)", False, False),
    "first_result": ("ms to the first result (lower is better)", True, True),
    "memory": ("MiB above the start (lower is better)", True, False),
    "pipeline": ("items per second (higher is better)", False, False),
    "crash": ("results delivered of 200", False, False),
}
DISTRIBUTIONS = {"streamfutures": "streamfutures", "joblib": "joblib", "mpire": "mpire",
                 "pebble": "Pebble", "loky": "loky", "pypeln": "pypeln",
                 "streamable": "streamable"}
OUTCOME_COLOURS = {"finishes": "tab:green", "raises": "tab:orange", "hangs": "tab:red",
                   "fails": "tab:gray"}


def versions(peers):
    out = {}
    for peer in peers:
        dist = DISTRIBUTIONS.get(peer.name.split()[0])
        if dist is None:
            out[peer.name] = "stdlib"
            continue
        if dist == "streamfutures":
            # run from the source tree, not installed
            import streamfutures
            out[peer.name] = streamfutures.__version__
            continue
        try:
            out[peer.name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[peer.name] = "not installed"
    return out


def plotted_value(workload, cell, results):
    """The number a plot shows for a cell, or None."""
    if workload == "crash":
        return cell.get("results")
    if cell.get("over_cap"):
        return None
    value = cell.get("value")
    if value is None:
        return None
    if workload == "factorize":
        return results["factorize_serial_s"] / value
    if workload == "first_result":
        return value * 1e3
    return value


def short_text(workload, cell, results):
    """The cell without its qualifiers (those go in cell_text / footnotes)."""
    if "na" in cell:
        return "n/a"
    if "text" in cell and (workload == "crash" or cell.get("over_cap")):
        if workload == "crash":
            return cell["outcome"]
        return "> %d MiB" % results["memory_cap_mib"]
    value = plotted_value(workload, cell, results)
    text = {"threads": "%.2f us", "processes": "%.2f us", "factorize": "%.2fx",
            "first_result": "%.0f ms", "memory": "%.1f MiB",
            "pipeline": "%.0f /s"}[workload] % value
    if cell.get("chunksize"):
        text += " (c=%d)" % cell["chunksize"]
    return text


def cell_text(workload, cell, results):
    """One line for the console: the cell and every qualifier."""
    if "na" in cell:
        return "n/a: " + cell["na"]
    if workload == "crash" or cell.get("over_cap"):
        return cell["text"]
    text = short_text(workload, cell, results)
    if workload == "first_result":
        text += ", last at %.2f s" % cell["last_s"]
    if workload == "pipeline":
        text += " (%.0f%% of pipelined ideal)" % (100 * cell["vs_ideal"])
    if workload == "memory":
        text += " in %.1f s" % cell["seconds"]
    if cell.get("note"):
        text += " [%s]" % cell["note"]
    return text


def ordered(results):
    """The workloads measured, in the order TITLES gives (a merged run may
    have added them in another)."""
    return [w for w in TITLES if w in results["workloads"]]


def peer_names(results, workload):
    """A workload's peers in the order of peers.PEERS (the JSON's keys are
    sorted)."""
    from peers import PEERS
    rank = {peer.name: i for i, peer in enumerate(PEERS)}
    return sorted(results["workloads"][workload], key=lambda name: rank.get(name, len(rank)))


def markdown(results):
    workloads = ordered(results)
    peers = peer_names(results, workloads[0])
    notes = []

    def footnote(text):
        if text not in notes:
            notes.append(text)
        return "[%d]" % (notes.index(text) + 1)

    rows = ["| peer | " + " | ".join(TITLES[w] for w in workloads) + " |",
            "|---|" + "---|" * len(workloads)]
    for peer in peers:
        cells = []
        for workload in workloads:
            cell = results["workloads"][workload][peer]
            text = short_text(workload, cell, results)
            if "na" in cell:
                text += " " + footnote(cell["na"])
            elif workload == "crash" or cell.get("over_cap"):
                text += " " + footnote(cell["text"])
            if cell.get("note"):
                text += " " + footnote(cell["note"])
            cells.append(text)
        rows.append("| %s %s | %s |" % (peer, results["versions"][peer], " | ".join(cells)))
    head = ("%d cores, Python %s, thread pools of %d threads, process pools of one process "
            "per core; c= is the best chunk size found for a chunked peer. pypeln yields "
            "results as they complete (it has no ordered map); the others in input order."
            % (results["cpus"], results["python"], results["threads"]))
    return "\n".join([head, ""] + rows + [""] + ["%d. %s" % (i + 1, n)
                                                 for i, n in enumerate(notes)]) + "\n"


def plot_workload(ax, workload, results):
    label, _lower_better, log = AXES[workload]
    cells = results["workloads"][workload]
    names = peer_names(results, workload)
    values, colours, marks = [], [], []
    for name in names:
        cell = cells[name]
        value = plotted_value(workload, cell, results)
        colour = "tab:blue" if name.startswith("streamfutures") else "tab:gray"
        mark = short_text(workload, cell, results)
        if workload == "crash" and "outcome" in cell:
            colour = OUTCOME_COLOURS[cell["outcome"]]
        elif cell.get("over_cap"):
            value, colour, mark = results["memory_cap_mib"], "tab:red", mark + ", stopped"
        values.append(value or 0)
        colours.append(colour)
        marks.append(mark)
    y = range(len(names))
    ax.barh(list(y), values, color=colours)
    ax.set_yticks(list(y))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    if log and any(values):
        ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_title(TITLES[workload])
    # every bar says its value (a zero has no bar to see), n/a says so
    floor = min((v for v in values if v), default=1) if log else 0
    for i, (value, mark) in enumerate(zip(values, marks)):
        ax.text(value or floor, i, " " + mark, va="center", fontsize=7)
    ax.set_xlim(right=max(values or [1]) * (4 if log else 1.35))


def draw(results, folder):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = ordered(results)
    for workload in workloads:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        plot_workload(ax, workload, results)
        fig.tight_layout()
        fig.savefig(os.path.join(folder, "peers_%s.png" % workload), dpi=100)
        plt.close(fig)
    rows = (len(workloads) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(13, 3.2 * rows))
    flat = list(axes.flat) if rows > 1 else list(axes)
    for ax, workload in zip(flat, workloads):
        plot_workload(ax, workload, results)
    for ax in flat[len(workloads):]:
        ax.axis("off")
    fig.suptitle("streamfutures and its peers: %d cores, Python %s"
                 % (results["cpus"], results["python"]))
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "peers.png"), dpi=100)
    plt.close(fig)


def write(results, folder, plots=True):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "peers.json"), "w") as out:
        json.dump(results, out, indent=2, sort_keys=True)
    with open(os.path.join(folder, "peers.md"), "w") as out:
        out.write(markdown(results))
    if plots:
        draw(results, folder)
