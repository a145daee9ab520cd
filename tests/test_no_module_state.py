"""No module keeps runtime state in a global: the resolver cache, connection slots, EHLO
name, token sources, the doctor's answers, the round trips in flight... live in one
`Runtime` per daemon or `check` run (protocols/runtime.py), so two of them in one process
share nothing.

This check fails when a module-level (or class-level) mutable container is changed
anywhere in the package (`X[k] = v`, `X.add(...)`, `X[:] = ...`, `del X[k]`, `X += ...`) or
has a lower-case name (a variable, not a constant table), when a `global` statement or a
process-wide cache decorator appears. Constant tables (upper-case, filled where they are
written, only read afterwards) pass; what must be process-wide on purpose is listed below.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import pyast

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mailcanary"

# (module path, name) -> why it may be process-wide.
ALLOWED = {
    ("protocols/limits.py", "_holder"): "a ContextVar: per task (each probe's slot holder)",
    ("config/types.py", "_SHARED"): "a ContextVar: per config load (equal values shared "
    "within one load only)",
    ("probes/domain/spf.py", "_RESOLVER"): "a ContextVar: per worker-thread call (pyspf's one "
    "DNS hook reads the run's resolver from it)",
    # Answers that depend only on their key (a ca_file's path, mtime and size): the same for
    # every runtime, so sharing them shares no state (a trust store costs ~20 ms to load).
    ("protocols/tls.py", "_cached_context"): "pure cache keyed by the file's identity",
    ("probes/inbound/trigger.py", "_cached_tls"): "pure cache keyed by the file's identity",
    # A language's catalog is package data, read once (Babel parse ~50 ms); a Translator is
    # never changed after it is built, so every runtime may share it.
    ("i18n/catalog.py", "_translator"): "pure cache keyed by the language code",
    ("i18n/catalog.py", "_plural_rule"): "pure cache keyed by a Plural-Forms expression",
    # A failure's hint is a function of its arguments alone; equal hints share one Text.
    ("diagnosis/taxonomy.py", "_hint"): "pure cache keyed by reason, provider and server",
}

_MUTABLE_CALLS = {"dict", "list", "set", "bytearray", "defaultdict", "OrderedDict", "Counter",
                  "deque", "WeakKeyDictionary", "WeakValueDictionary", "WeakSet", "ChainMap",
                  "ContextVar", "Queue", "Lock", "Event", "Semaphore"}
_MUTABLE_NODES = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)
_CACHE_DECORATORS = {"lru_cache", "cache"}  # not cached_property: that one is per object


def _called(node: ast.expr) -> str:
    func = node.func if isinstance(node, ast.Call) else None
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _assigned(body: list[ast.stmt]) -> list[tuple[str, ast.expr]]:
    out = []
    for node in body:
        if isinstance(node, ast.Assign):
            out += [(ast.unparse(t), node.value) for t in node.targets]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            out.append((ast.unparse(node.target), node.value))
    return out


def _decorators(node: ast.AST) -> set[str]:
    names = set()
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            names.add(target.attr if isinstance(target, ast.Attribute) else ast.unparse(target))
    return names


_MUTATORS = {"add", "append", "clear", "discard", "extend", "insert", "pop", "popitem",
             "remove", "setdefault", "update", "appendleft", "set"}


def _root_name(node: ast.expr) -> str | None:
    """`X` of `X`, `X[k]`, `module.X` and `module.X[k]`."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def mutated_names(trees: list[ast.Module]) -> set[str]:
    """Names changed in place anywhere: by a mutating method, item or slice assignment,
    `del X[k]` or an augmented assignment."""
    out: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                node.func.attr in _MUTATORS
            ):
                targets = [node.func.value]
            elif isinstance(node, ast.Assign | ast.Delete):
                targets = [t for t in node.targets if isinstance(t, ast.Subscript)]
            elif isinstance(node, ast.AugAssign):
                targets = [node.target]
            out |= {name for t in targets if (name := _root_name(t)) is not None}
    return out


def findings(source: str, where: str, mutated: set[str] | None = None) -> list[str]:
    """What in `source` (module `where`) would keep state between runtimes. `mutated`:
    names changed in place anywhere in the package (default: in `source`)."""
    tree = pyast.parse(source)
    if mutated is None:
        mutated = mutated_names([tree])
    out = []
    scopes: list[tuple[str, list[ast.stmt]]] = [("", tree.body)]
    scopes += [(f"{n.name}.", n.body) for n in tree.body if isinstance(n, ast.ClassDef)]
    for prefix, body in scopes:
        for name, value in _assigned(body):
            if (name.startswith("__") and name.endswith("__")) or name == "model_config":
                continue
            if (where, prefix + name) in ALLOWED:
                continue
            if _called(value) == "ContextVar":
                out.append(f"{where}: context variable {prefix}{name}")
            elif isinstance(value, _MUTABLE_NODES) or _called(value) in _MUTABLE_CALLS:
                bare = name.split(".")[-1]
                if bare in mutated or not bare.lstrip("_").isupper():
                    out.append(f"{where}: mutable {prefix}{name} at module level")
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            out.append(f"{where}:{node.lineno}: `global {', '.join(node.names)}`")
        cached = _decorators(node) & _CACHE_DECORATORS
        if cached and (where, getattr(node, "name", "")) not in ALLOWED:
            out.append(f"{where}:{getattr(node, 'lineno', 0)}: process-wide "
                       f"@{cached.pop()} on {getattr(node, 'name', '?')}")
    return out


def test_no_runtime_state_in_module_globals() -> None:
    paths = sorted(PACKAGE.rglob("*.py"))
    mutated = mutated_names([pyast.parse(p.read_text()) for p in paths])
    found = []
    for path in paths:
        found += findings(path.read_text(), path.relative_to(PACKAGE).as_posix(), mutated)
    assert not found, ("keep it in protocols/runtime.py's Runtime (or, if it must be "
                       "process-wide, say why in ALLOWED):\n" + "\n".join(found))


def test_the_check_sees_what_the_runtime_replaced() -> None:
    """The singletons of before (issue 15) are each found, so the check can fail."""
    before = {  # each as it was written, with how it was changed
        "protocols/smtp.py": "_helo: list[str] = []\n",
        "protocols/resolver.py": "_resolvers: dict[int, Resolver] = {}\n",
        "probes/doctor.py": "_CACHES: dict[int, dict] = {}\ndef f(k):\n    _CACHES[k] = {}\n",
        "protocols/oauth2/rotated.py": "_STATE_DIR: list[Path] = []\n"
                                       "def use(p):\n    _STATE_DIR[:] = [p]\n",
        "protocols/oauth2/tokens.py": "_SOURCES: dict = {}\ndef f(k, v):\n    _SOURCES[k] = v\n",
        "probes/roundtrip/state.py": "ACTIVE: set[str] = set()\n",  # changed in probe.py:
        "credentials.py": "_warned_inline: set[str] = set()\n",
        "protocols/x.py": "class C:\n    seen = {}\n",
        "protocols/y.py": "import functools\n@functools.lru_cache\ndef f() -> int:\n    return 1\n",
        "protocols/z.py": "N = 0\ndef bump() -> None:\n    global N\n    N += 1\n",
        "protocols/w.py": "TABLE = {}\ndef f(k):\n    TABLE.setdefault(k, 1)\n",
    }
    elsewhere = mutated_names([pyast.parse("from x import ACTIVE\nACTIVE.add('t')\n")])
    assert findings(before.pop("probes/roundtrip/state.py"), "probes/roundtrip/state.py",
                    elsewhere)
    for where, source in before.items():
        assert findings(source, where), where
    assert not findings('GREETINGS = {"smtp": ("220",)}\n', "protocols/candidates.py")
