"""Imports point inward, time comes from the clock and the package logs instead of printing: read with `ast`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "workflow"

# The pure core may not know the adapters, the frameworks or the entry points.
DOMAIN_MAY_NOT_IMPORT = (
    "sqlalchemy", "fastapi", "starlette", "apscheduler", "alembic", "jinja2",
    "workflow.persistence", "workflow.services", "workflow.cli", "workflow.bootstrap",
    "workflow.web", "workflow.scheduling", "notifications",
)
SERVICES_MAY_NOT_IMPORT = ("workflow.cli", "workflow.web")
# Reading the wall clock anywhere but workflow/clock.py makes time impossible to control in tests.
WALL_CLOCK_CALLS = {
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today", "datetime.date.today",
    "time.time", "time.time_ns",
}
CLOCK_MODULE = "workflow/clock.py"


@dataclass(frozen=True)
class Found:
    file: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what}"


def python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported_modules(path: Path, tree: ast.Module | None = None) -> Iterator[tuple[int, str]]:
    """Every module a file imports, anywhere in it (functions and TYPE_CHECKING blocks too), made absolute."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree or parse(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from workflow import persistence` imports a module too
                yield node.lineno, f"{module}.{alias.name}"


def is_within(module: str, banned: str) -> bool:
    return module == banned or module.startswith(banned + ".")


def forbidden_imports(files: list[Path], banned: tuple[str, ...]) -> list[Found]:
    found: dict[tuple[str, int], Found] = {}
    for path in files:
        for line, module in imported_modules(path):
            key = (relative(path), line)
            if key not in found and any(is_within(module, name) for name in banned):
                found[key] = Found(*key, f"imports {module}")
    return sorted(found.values(), key=lambda f: (f.file, f.line))


def wall_clock_calls(source: str, filename: str) -> list[Found]:
    """Calls such as datetime.now(), dt.datetime.utcnow(), date.today() or time() after `from time import time`."""
    tree = ast.parse(source, filename=filename)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[(alias.asname or alias.name).split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        dotted = dotted_name(node.func)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        if head not in aliases:
            continue
        qualified = ".".join(filter(None, [aliases[head], rest]))
        if qualified in WALL_CLOCK_CALLS:
            found.append(Found(filename, node.lineno, f"calls {dotted}() (ask the injected Clock instead)"))
    return found


def dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted_name(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def print_calls(source: str, filename: str) -> list[Found]:
    tree = ast.parse(source, filename=filename)
    return [
        Found(filename, node.lineno, "calls print() (log instead, or write through workflow/cli/output.py)")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]


def report(found: list[Found]) -> str:
    return "\n" + "\n".join(map(str, found))


# --- the scanners find what they look for --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import datetime\nstamp = datetime.now()\n",
        "from datetime import UTC, datetime\nstamp = datetime.now(UTC)\n",
        "import datetime\nstamp = datetime.datetime.utcnow()\n",
        "import datetime as dt\nstamp = dt.date.today()\n",
        "from datetime import date as day\nstamp = day.today()\n",
        "import time\nstamp = time.time()\n",
        "from time import time\nstamp = time()\n",
        "from datetime import datetime\ndef later():\n    return datetime.utcnow()\n",
    ],
)
def test_the_wall_clock_scanner_finds_every_spelling_of_now(source: str) -> None:
    found = wall_clock_calls(source, "example.py")
    assert len(found) == 1, found
    assert str(found[0]).startswith(f"example.py:{source.count(chr(10))}: calls ")


@pytest.mark.parametrize(
    "source",
    [
        "from workflow.clock import Clock\ndef f(clock: Clock):\n    return clock.now()\n",
        "import time\nstarted = time.perf_counter()\n",
        "from datetime import date\nd = date.fromisoformat('2026-01-01')\n",
        "# datetime.now() is what we avoid\nnote = 'datetime.now('\n",
    ],
)
def test_the_wall_clock_scanner_leaves_the_clock_and_other_calls_alone(source: str) -> None:
    assert wall_clock_calls(source, "example.py") == []


def test_the_import_reader_resolves_relative_and_from_imports(tmp_path: Path) -> None:
    assert module_name(PACKAGE / "domain" / "appeal.py") == "workflow.domain.appeal"
    imports = {module for _, module in imported_modules(
        PACKAGE / "domain" / "appeal.py",
        ast.parse("from . import spec\nfrom ..persistence import tables\nimport sqlalchemy.orm as orm\n"
                  "def f():\n    from workflow import services\n"),
    )}
    assert {"workflow.domain.spec", "workflow.persistence.tables", "sqlalchemy.orm", "workflow.services"} <= imports


# --- the rules ------------------------------------------------------------------------------------------------------


def test_the_domain_imports_no_framework_adapter_or_entry_point() -> None:
    files = python_files(PACKAGE / "domain")
    assert len(files) >= 5, f"expected the domain modules under {PACKAGE / 'domain'}, found {files}"
    found = forbidden_imports(files, DOMAIN_MAY_NOT_IMPORT)
    assert not found, "the domain must stay pure Python:" + report(found)


def test_only_the_machine_module_imports_transitions() -> None:
    files = python_files(PACKAGE) + python_files(ROOT / "notifications")
    found = [f for f in forbidden_imports(files, ("transitions",)) if f.file != "workflow/domain/machine.py"]
    assert not found, "only workflow/domain/machine.py may import transitions:" + report(found)
    assert forbidden_imports([PACKAGE / "domain" / "machine.py"], ("transitions",)), (
        "workflow/domain/machine.py no longer imports transitions: update this test"
    )


def test_services_never_import_the_entry_points() -> None:
    found = forbidden_imports(python_files(PACKAGE / "services"), SERVICES_MAY_NOT_IMPORT)
    assert not found, "services are called by entry points, never the other way round:" + report(found)


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    found = []
    for path in python_files(PACKAGE):
        found += wall_clock_calls(path.read_text(encoding="utf-8"), relative(path))
    elsewhere = [f for f in found if f.file != CLOCK_MODULE]
    assert not elsewhere, "time is a service: take a Clock" + report(elsewhere)
    assert any(f.file == CLOCK_MODULE for f in found), (
        f"{CLOCK_MODULE} no longer reads the wall clock: update this test"
    )


def test_the_package_logs_instead_of_printing() -> None:
    found = []
    for path in python_files(PACKAGE):
        found += print_calls(path.read_text(encoding="utf-8"), relative(path))
    assert not found, "no print() in workflow/:" + report(found)
