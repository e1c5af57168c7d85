"""Draw the import graph of the ``dd3d`` and ``viewer`` packages as a PNG, and say whether any arrow runs back up.

Every ``import`` and ``from ... import`` of every module counts, lazy ones inside functions too (read
with :mod:`ast`, nothing is imported). Nodes are the viewer's modules, the engine's subpackages
(``dd3d.data``, ``dd3d.distill``, ``dd3d.engine``, ``dd3d.models``, ``dd3d.nn``: their inner imports
are left out) and the engine's top-level modules. Layers come from the longest path down to a node
that imports nothing (networkx, a dependency of torch; matplotlib draws): every grey arrow points
down; the nodes of a cycle share a red box and their arrows are red, as are imports of the viewer by
the engine. The cycles between single modules and those imports are printed too.

    python scripts/import_graph.py --out docs/figures/import-graph-after.png
    git archive 74b1671 dd3d viewer | tar -x -C /tmp/before
    python scripts/import_graph.py --root /tmp/before --out docs/figures/import-graph-before.png
"""
from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

import networkx as nx

PACKAGES = ("dd3d", "viewer")
REPO = Path(__file__).resolve().parents[1]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` (module ``module``) imports anywhere in its text."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package ``level`` steps up
                package = module.split(".")[:len(module.split(".")) - node.level + (path.stem == "__init__")]
                base = ".".join([*package, *([base] if base else [])])
            # ``from package import module`` imports the module; ``from module import name`` the module
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # the module itself, else its nearest package
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    found.discard(module)
    return found


def module_graph(root: Path) -> nx.DiGraph:
    """Module -> the modules of ``PACKAGES`` it imports (edges), for the tree under ``root``."""
    files = {module_name(root, f): f for package in PACKAGES for f in sorted((root / package).rglob("*.py"))}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for module, path in files.items():
        graph.add_edges_from((module, target) for target in imports_of(path, module, set(files)))
    return graph


def node_of(module: str, subpackages: set[str]) -> str | None:
    """The drawn node of ``module``: its dd3d subpackage, else itself (None: package roots, ``__main__``)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[-1] == "__main__":
        return None
    return ".".join(parts[:2]) if ".".join(parts[:2]) in subpackages else module


def drawn_graph(modules: nx.DiGraph, root: Path) -> nx.DiGraph:
    subpackages = {f"dd3d.{d.name}" for d in (root / "dd3d").iterdir() if (d / "__init__.py").is_file()}
    graph = nx.DiGraph()
    for module in modules:
        if (node := node_of(module, subpackages)) is not None:
            graph.add_node(node)
    for a, b in modules.edges:
        source, target = node_of(a, subpackages), node_of(b, subpackages)
        if source is not None and target is not None and source != target:
            graph.add_edge(source, target)
    return graph


def layers(graph: nx.DiGraph) -> dict[str, int]:
    """Layer of every node: one above its highest import (0: imports nothing drawn), then raised to
    just below its lowest importer, so a module sits next to what uses it (a cycle shares a layer)."""
    dag = nx.condensation(graph)
    order = list(nx.topological_sort(dag))  # importers first
    height: dict[int, int] = {}
    for c in reversed(order):
        height[c] = 1 + max((height[s] for s in dag.successors(c)), default=-1)
    for c in order:
        if dag.in_degree(c):
            height[c] = min(height[p] for p in dag.predecessors(c)) - 1
    return {n: height[dag.graph["mapping"][n]] for n in graph}


def positions(graph: nx.DiGraph, layer: dict[str, int]) -> dict[str, tuple[float, float]]:
    """Nodes spread along their layer, ordered by the mean position of their neighbours (a few sweeps)."""
    rows: dict[int, list[str]] = defaultdict(list)
    for node in sorted(graph):
        rows[layer[node]].append(node)
    x = {n: float(i) - (len(row) - 1) / 2 for row in rows.values() for i, n in enumerate(row)}
    for _ in range(8):
        for row in rows.values():
            row.sort(key=lambda n: sum(x[m] for m in nx.all_neighbors(graph, n)) / max(graph.degree(n), 1))
            x.update({n: float(i) - (len(row) - 1) / 2 for i, n in enumerate(row)})
    return {n: (x[n] * 1.6, layer[n] * 1.0) for n in graph}


def draw(graph: nx.DiGraph, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layer = layers(graph)
    pos = positions(graph, layer)
    cyclic = {n for scc in nx.strongly_connected_components(graph) if len(scc) > 1 for n in scc}
    width = max(sum(1 for n in graph if layer[n] == k) for k in set(layer.values()))
    fig, ax = plt.subplots(figsize=(max(8.0, 1.75 * width), 1.3 + 0.95 * (max(layer.values()) + 1)), dpi=110)
    for a, b in graph.edges:
        back = (a in cyclic and b in cyclic) or (a.startswith("dd3d") and b.startswith("viewer"))
        ax.annotate("", xy=pos[b], xytext=pos[a], zorder=1,
                    arrowprops=dict(arrowstyle="-|>", color="#d62728" if back else "0.65", lw=1.4 if back else 0.7,
                                    shrinkA=11, shrinkB=11,
                                    connectionstyle="arc3,rad=0.25" if layer[a] == layer[b] else "arc3,rad=0.0"))
    for node, (x, y) in pos.items():
        color = "#fde0dd" if node in cyclic else "#e8f1fa" if node.startswith("viewer") else "#eef5e9"
        ax.text(x, y, node.replace("dd3d.", "").replace("viewer.", "viewer/") if node.count(".") else node,
                ha="center", va="center", fontsize=8, zorder=2,
                bbox=dict(boxstyle="round,pad=0.3", fc=color, ec="#d62728" if node in cyclic else "0.4", lw=0.8))
    ax.set_title(f"{title}\ngrey: imports (all pointing down); red: a cycle, or the engine (dd3d) importing the viewer",
                 fontsize=10)
    ax.set_axis_off()
    xs, ys = [x for x, _ in pos.values()], [y for _, y in pos.values()]
    ax.set_xlim(min(xs) - 0.9, max(xs) + 0.9)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
    fig.subplots_adjust(0.01, 0.01, 0.99, 0.94)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO, help="a tree holding dd3d/ and viewer/ (default: this one)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default="", help="figure title (default: the counts)")
    args = parser.parse_args()
    modules = module_graph(args.root)
    graph = drawn_graph(modules, args.root)
    module_cycles = [sorted(c) for c in nx.strongly_connected_components(modules) if len(c) > 1]
    node_cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    up = sorted(f"{a} -> {b}" for a, b in modules.edges if a.startswith("dd3d") and b.startswith("viewer"))
    summary = (f"{modules.number_of_nodes()} modules, {modules.number_of_edges()} imports; "
               f"cycles: {len(module_cycles)} between modules, {len(node_cycles)} between the nodes drawn")
    draw(graph, args.title or summary, args.out)
    print(summary)
    for cycle in module_cycles + node_cycles:
        print("  cycle:", " <-> ".join(cycle))
    for edge in up:
        print("  engine imports the viewer:", edge)
    print(args.out)


if __name__ == "__main__":
    main()
