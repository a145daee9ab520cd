"""No module keeps runtime state in a global: the resolver cache, connection slots, EHLO
name, token sources, the doctor's answers, the round trips in flight... live in one
`Runtime` per daemon or `check` run (protocols/runtime.py), so two of them in one process
share nothing. This check fails when a module-level (or class-level) mutable container, a
`global` statement or a process-wide cache decorator appears that is not listed here as a
constant table."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mailcanary"

# (module path, name): tables filled once at import and only read afterwards.
CONSTANTS = {
    ("cli.py", "COMMANDS"),
    ("config/models.py", "_DEFAULT_PORTS"), ("config/models.py", "_LOOPBACK_NAMES"),
    ("config/models.py", "OAUTH2_PRESETS"), ("config/presets.py", "PRESETS"),
    ("config/types.py", "_UNIT_SECONDS"),
    ("daemon/alerts/sinks.py", "_HEADERS"),
    ("daemon/metrics.py", "PHASES_OF"), ("daemon/metrics.py", "RUN_PHASES_OF"),
    ("daemon/web.py", "_REASONS"),
    ("diagnosis/classify.py", "_NXDOMAIN_ERRNOS"), ("diagnosis/classify.py", "_UNREACHABLE_ERRNOS"),
    ("diagnosis/classify.py", "_RESET_ERRNOS"), ("diagnosis/classify.py", "_VERIFY_CODES"),
    ("diagnosis/doctor.py", "_QUALIFYING"), ("diagnosis/doctor.py", "STANDARD"),
    ("diagnosis/doctor.py", "_WORDS"),
    ("diagnosis/hints.py", "HINTS"), ("diagnosis/hints.py", "OAUTH_HINTS"),
    ("diagnosis/pop3.py", "_CODES"), ("diagnosis/providers.py", "PROVIDER_HINTS"),
    ("diagnosis/spam.py", "_GOOD"), ("diagnosis/spam.py", "_SFV"), ("diagnosis/spam.py", "_CAT"),
    ("diagnosis/taxonomy.py", "TAXONOMY"), ("diagnosis/taxonomy.py", "CLASS_OF"),
    ("probes/__init__.py", "PROBES"),
    ("probes/inbound/message.py", "_WIDER"),
    ("protocols/candidates.py", "GREETINGS"),
    ("testbed/standard_ports.py", "STANDARD_PORTS"),
}
# Per task, not per process: each probe's slot holder (protocols/limits.py).
CONTEXT_VARIABLES = {("protocols/limits.py", "_holder")}
# Caches of answers that depend only on their key (a ca_file's path, mtime and size): the
# same for every runtime, so sharing them shares no state (trust stores cost ~20 ms each).
PURE_CACHES = {("protocols/tls.py", "_cached_context"),
               ("probes/inbound/trigger.py", "_cached_tls")}

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


def findings(source: str, where: str) -> list[str]:
    """What in `source` (module `where`) would keep state between runtimes."""
    tree = ast.parse(source)
    out = []
    scopes: list[tuple[str, list[ast.stmt]]] = [("", tree.body)]
    scopes += [(f"{n.name}.", n.body) for n in tree.body if isinstance(n, ast.ClassDef)]
    for prefix, body in scopes:
        for name, value in _assigned(body):
            if (name.startswith("__") and name.endswith("__")) or name == "model_config":
                continue
            kind = ("context variable" if _called(value) == "ContextVar" else
                    "mutable container" if isinstance(value, _MUTABLE_NODES)
                    or _called(value) in _MUTABLE_CALLS else None)
            allowed = CONTEXT_VARIABLES if kind == "context variable" else CONSTANTS
            if kind is not None and (where, prefix + name) not in allowed:
                out.append(f"{where}: {kind} {prefix}{name} at module level")
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            out.append(f"{where}:{node.lineno}: `global {', '.join(node.names)}`")
        cached = _decorators(node) & _CACHE_DECORATORS
        if cached and (where, getattr(node, "name", "")) not in PURE_CACHES:
            out.append(f"{where}:{getattr(node, 'lineno', 0)}: process-wide "
                       f"@{cached.pop()} on {getattr(node, 'name', '?')}")
    return out


def test_no_runtime_state_in_module_globals() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += findings(path.read_text(), path.relative_to(PACKAGE).as_posix())
    assert not found, "keep it in protocols/runtime.py's Runtime:\n" + "\n".join(found)


def test_the_check_sees_what_the_runtime_replaced() -> None:
    """The singletons of before (issue 15) are each found, so the check can fail."""
    before = {
        "protocols/smtp.py": "_helo: list[str] = []\n",
        "protocols/resolver.py": "_resolvers: dict[int, Resolver] = {}\n",
        "probes/doctor.py": "_CACHES: dict[int, dict[_Key, Candidate | None]] = {}\n",
        "protocols/oauth2/rotated.py": "_STATE_DIR: list[Path] = []\n",
        "protocols/oauth2/tokens.py": "_SOURCES: dict[tuple[str, str], TokenSource] = {}\n",
        "probes/roundtrip/state.py": "ACTIVE: set[str] = set()\n",
        "credentials.py": "_warned_inline: set[str] = set()\n",
        "protocols/x.py": "class C:\n    seen = {}\n",
        "protocols/y.py": "import functools\n@functools.lru_cache\ndef f() -> int:\n    return 1\n",
        "protocols/z.py": "N = 0\ndef bump() -> None:\n    global N\n    N += 1\n",
    }
    for where, source in before.items():
        assert findings(source, where), where
    assert not findings('GREETINGS = {"smtp": ("220",)}\n', "protocols/candidates.py")
