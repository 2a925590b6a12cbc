"""The layering rules of ARCHITECTURE.md, checked on the source tree.

A concept is a .c file with its .h (map.c + map_object.h are two
concepts, map_object.c + map_object.h one).  An edge A -> B means A's
files include B's header.  Checked:
  - src/core never includes Python.h, nor anything of src/python;
  - include/ (the public C API) includes nothing of src/;
  - src/python includes only the public headers of the core, never its
    private ones (sync.h, pool_internal.h, proc_ring.h);
  - the graph of concepts has no cycle.
Prints the graph (`make layers`) and exits 1 on any violation."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRS = ["include", "src/core", "src/python"]
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def sources():
    for d in DIRS:
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            if name.endswith((".c", ".h")):
                yield d, name


def concept(d, name):
    return d + "/" + os.path.splitext(name)[0]


def main():
    headers = {name: d for d, name in sources() if name.endswith(".h")}
    graph, problems = {}, []
    for d, name in sources():
        node = concept(d, name)
        graph.setdefault(node, set())
        with open(os.path.join(ROOT, d, name)) as f:
            text = f.read()
        for kind, target in INCLUDE.findall(text):
            if target == "Python.h" and d != "src/python":
                problems.append("%s/%s includes Python.h: only src/python may" % (d, name))
            if kind != '"':
                continue
            where = headers.get(target)
            if where is None:
                problems.append("%s/%s includes %s, which is not in %s" % (d, name, target, DIRS))
                continue
            if d == "include" and where != "include":
                problems.append("%s/%s (public) includes %s/%s" % (d, name, where, target))
            if d == "src/core" and where == "src/python":
                problems.append("%s/%s includes the binding's %s" % (d, name, target))
            if d == "src/python" and where == "src/core":
                problems.append("%s/%s includes the core's private %s" % (d, name, target))
            other = concept(where, target)
            if other != node:
                graph[node].add(other)
    for node in sorted(graph):
        print("%-28s -> %s" % (node, " ".join(sorted(graph[node])) or "(nothing)"))
    # depth-first search for a cycle
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                problems.append("include cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    for problem in problems:
        print("layers: " + problem, file=sys.stderr)
    print("layers: %d concepts, %d edges, %s" % (
        len(graph), sum(map(len, graph.values())),
        "%d problems" % len(problems) if problems else "no cycle, no layer crossed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
