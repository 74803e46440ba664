#!/usr/bin/env python3
"""The import graph of a Rust crate's modules, from the source: which module names which
(`crate::x`, `super::x`). Fails when the graph has a circle, or an arrow from a lower layer
to a higher one (LAYERS below, lowest first; a submodule is in its top module's layer).
`--dot` prints the graph for Graphviz. Run by `make check`.

Usage: infra/import_graph.py [--dot] SRC_DIR [SRC_DIR...]
"""
import re
import sys
from pathlib import Path


LAYERS = {
    "functions/core/src": [
        ["refusal", "telemetry"],
        ["integrity"],
        ["domain"],
        ["config", "change", "catalog", "store", "events", "parts", "error", "metrics", "budget"],
        ["identity", "inspect", "memory"],
        ["processor", "sweeper", "jwt"],
        ["api"],
        ["notify"],
        ["aws"],
        ["lambda"],
    ],
    "src": [
        ["private_file", "server", "outbox", "objects", "delivery"],
        ["sqlite", "notify", "storage", "auth", "live"],
        ["crate"],
    ],
}


def layer_of(layers, module):
    top = module.split("::")[0]
    for i, names in enumerate(layers):
        if top in names:
            return i
    return None


def module_of(src: Path, file: Path) -> str:
    rel = file.relative_to(src).with_suffix("")
    parts = [p for p in rel.parts if p not in ("mod", "lib", "main")]
    return "::".join(parts) or "crate"


def edges(src: Path):
    # A binary's main.rs beside a lib.rs is another crate: it sees the library by name.
    files = [f for f in src.rglob("*.rs") if not (f.name == "main.rs" and (f.parent / "lib.rs").exists())]
    mods = {module_of(src, f): f for f in files}
    names = set(mods)
    out = {m: set() for m in names}
    for m, f in mods.items():
        text = f.read_text()
        # Test modules may reach anywhere; they are not part of the layering.
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
        text = re.sub(r"//[^\n]*", "", text)
        parent = m.rsplit("::", 1)[0] if "::" in m else "crate"
        for path in re.findall(r"\b(crate|super)((?:::\w+)+)", text):
            base = "" if path[0] == "crate" else (parent if parent != "crate" else "")
            segs = [s for s in path[1].split("::") if s]
            full = [base] if base else []
            # The longest known module this path names.
            target = None
            for i in range(len(segs)):
                cand = "::".join(full + segs[: i + 1])
                if cand in names:
                    target = cand
            if target is None and path[0] == "crate":
                target = "crate"
            if target and target != m and not m.startswith(target + "::"):
                out[m].add(target)
    return out


def cycles(graph):
    seen, stack, found = set(), [], []

    def visit(n, on_path):
        if n in on_path:
            found.append(stack[stack.index(n):] + [n])
            return
        if n in seen:
            return
        seen.add(n)
        on_path.add(n)
        stack.append(n)
        for t in sorted(graph.get(n, ())):
            visit(t, on_path)
        stack.pop()
        on_path.discard(n)

    for n in sorted(graph):
        visit(n, set())
    return found


def main(argv):
    dot = "--dot" in argv
    dirs = [Path(a) for a in argv if a != "--dot"]
    failed = False
    for src in dirs:
        graph = edges(src)
        if dot:
            print(f'digraph "{src}" {{')
            for m, ts in sorted(graph.items()):
                for t in sorted(ts):
                    print(f'  "{m}" -> "{t}";')
            print("}")
        for c in cycles(graph):
            failed = True
            print(f"{src}: import circle: {' -> '.join(c)}", file=sys.stderr)
        layers = next((v for k, v in LAYERS.items() if src.resolve().as_posix().endswith(k)), None)
        for m, ts in sorted(graph.items()):
            for t in sorted(ts):
                lm, lt = (layer_of(layers, m), layer_of(layers, t)) if layers else (0, 0)
                if lm is None or lt is None:
                    failed = True
                    print(f"{src}: {m if lm is None else t} is in no layer of infra/import_graph.py", file=sys.stderr)
                elif lt > lm:
                    failed = True
                    print(f"{src}: arrow up: {m} (layer {lm}) -> {t} (layer {lt})", file=sys.stderr)
        if not dot:
            n = sum(len(t) for t in graph.values())
            ok = "no circle, no arrow up" if not failed else "FAILED"
            print(f"{src}: {len(graph)} modules, {n} imports: {ok}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
