"""A wheel built from the source tree holds the definitions, the calendars, the migrations and the `appeals` script."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Left behind by builds, editors and test runs; none of it belongs in a wheel, and copying it is slow.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", ".benchmarks", "*.db*",
    ".venv", "maildir",
)
pytestmark = pytest.mark.slow


def build_requirements_installed() -> bool:
    """True when this interpreter can build without fetching setuptools>=68 and wheel (see pyproject.toml)."""
    try:
        setuptools = tuple(int(part) for part in metadata.version("setuptools").split(".")[:2])
        metadata.version("wheel")
    except metadata.PackageNotFoundError:
        return False
    return setuptools >= (68, 0)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tree: setuptools' build/ and egg-info never land in the working copy others edit,
    and the tests compare the wheel with exactly what it was built from."""
    copy = tmp_path_factory.mktemp("source") / "appeal-workflow"
    shutil.copytree(ROOT, copy, ignore=NOT_SOURCE)
    return copy


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", str(out), str(source)]
    if build_requirements_installed():
        command.insert(command.index("--no-deps"), "--no-build-isolation")
    built = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"{' '.join(command)} failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    wheels = sorted(out.glob("appeal_workflow-*.whl"))
    assert len(wheels) == 1, f"expected one appeal_workflow wheel in {out}, found {[w.name for w in out.iterdir()]}"
    archive = zipfile.ZipFile(wheels[0])
    yield archive
    archive.close()


def names(wheel: zipfile.ZipFile) -> set[str]:
    return set(wheel.namelist())


def test_the_wheel_carries_every_definition_and_calendar(source: Path, wheel: zipfile.ZipFile) -> None:
    shipped = sorted(f"definitions/{path.name}" for path in (source / "definitions").glob("*.yaml"))
    assert "definitions/outdoor_event_permit.yaml" in shipped
    assert len(shipped) >= 5, shipped
    calendars = sorted(f"definitions/calendar/{p.name}" for p in (source / "definitions" / "calendar").glob("*.yaml"))
    assert "definitions/calendar/cn-2026.yaml" in calendars
    missing = sorted({*shipped, *calendars, "definitions/__init__.py"} - names(wheel))
    assert not missing, f"missing from {wheel.filename}: {missing}"


def test_the_wheel_carries_the_migrations_alembic_needs(source: Path, wheel: zipfile.ZipFile) -> None:
    migrations = "workflow/persistence/migrations"
    needed = {f"{migrations}/env.py", f"{migrations}/script.py.mako"}
    missing = sorted(needed - names(wheel))
    assert not missing, f"missing from {wheel.filename}: {missing}"
    versions = sorted(n for n in names(wheel) if n.startswith(f"{migrations}/versions/0001_") and n.endswith(".py"))
    assert versions, f"no versions/0001_*.py migration in {wheel.filename}"
    in_tree = sorted(p.name for p in (source / migrations / "versions").glob("[0-9]*.py"))
    in_wheel = sorted(Path(n).name for n in names(wheel) if n.startswith(f"{migrations}/versions/"))
    assert set(in_tree) <= set(in_wheel), f"migrations missing from the wheel: {sorted(set(in_tree) - set(in_wheel))}"
    assert "workflow/py.typed" in names(wheel), "the wheel lacks workflow/py.typed (the package claims typing)"


def test_the_wheel_installs_the_appeals_console_script(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in names(wheel) if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(entry_points).decode("utf-8"))
    assert parser.has_section("console_scripts"), f"{entry_points} has no [console_scripts]"
    assert parser.get("console_scripts", "appeals", fallback=None) == "workflow.cli:main", (
        f"{entry_points} says: {dict(parser['console_scripts'])}"
    )


def test_the_wheel_carries_every_notification_template(source: Path, wheel: zipfile.ZipFile) -> None:
    templates = source / "notifications" / "templates"
    in_tree = sorted(
        path.relative_to(source).as_posix() for path in templates.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    missing = sorted(set(in_tree) - names(wheel))
    assert not missing, f"notification templates missing from {wheel.filename}: {missing}"
