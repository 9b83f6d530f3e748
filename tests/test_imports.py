"""The import structure the design asks for, read from the source (ast): no import cycles inside pipelines/, sampling
never imports training, and the studio reaches the engine only through pipelines.api (plus its config and store)."""
import ast
from pathlib import Path

from tests.conftest import ROOT

STUDIO_MAY_IMPORT = ("pipelines.api", "pipelines.config", "pipelines.store")


def modules() -> dict[str, Path]:
    found = {}
    for top in ("pipelines", "studio"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict) -> set[str]:
    """Every module of the project that `name` imports, at any depth of the file (a function's imports count too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in known and target != name:
                out.add(target)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_cycles_no_sampling_from_training_and_the_studio_through_the_api():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    engine = {n: {t for t in ts if t.startswith("pipelines")} for n, ts in graph.items() if n.startswith("pipelines")}
    assert cycles(engine) == []
    assert [(m, t) for m, ts in engine.items() if m.startswith("pipelines.sample") for t in ts
            if t.startswith("pipelines.train")] == []
    internals = sorted({t for m, ts in graph.items() if m.startswith("studio") for t in ts
                        if t.startswith("pipelines") and t not in (*STUDIO_MAY_IMPORT, "pipelines")})
    assert internals == []


def test_the_checker_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_studio_builds_its_page_without_torch(tmp_path):
    """torch, diffusers and transformers take seconds to import: the page is served first, they load when first used."""
    import subprocess
    import sys

    script = ("import sys; from studio.app import build_app; build_app(sys.argv[1]); "
              "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_the_engine_is_first_imported_by_one_thread_at_a_time(monkeypatch):
    """Two requests of the app that each first import part of the engine (Compare pressed while its list asks which
    samplers apply) must not import at once: diffusers' lazy modules then hand out half-initialised modules."""
    import threading
    import time
    import types

    from pipelines import api

    inside, most = [0], [0]

    def slow_import(module, package):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.2)  # long enough for the other thread to arrive
        inside[0] -= 1
        return types.SimpleNamespace(f=lambda: module)

    monkeypatch.setattr(api, "import_module", slow_import)
    first, second = api._deferred(".a:f"), api._deferred(".b:f")
    threads = [threading.Thread(target=f) for f in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1 and first() == ".a" and second() == ".b"
