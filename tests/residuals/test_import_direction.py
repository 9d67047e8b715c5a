"""Dependencies point one way (README, Layout; docs/architecture.md): a package never
imports the packages that build on it. Read from the source with ``ast``, so an import
inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("contract", "ingest", "attribution", "ledger", "dashboard", "residuals")

#: (folder, module prefixes no file under it may import)
RULES = [
    ("contract", ("ingest", "attribution", "ledger", "dashboard", "residuals")),
    ("ingest", ("ledger", "dashboard", "residuals")),
    ("attribution", ("ingest", "ledger", "dashboard", "residuals")),
    ("ledger", ("ingest", "attribution", "dashboard", "residuals")),
    ("ledger/store", ("ledger.allocate", "ledger.policy")),
    ("residuals/workflows", ("typer", "residuals.commands", "residuals.cli")),
]

def imports(path: Path) -> set[str]:
    """Every module ``path`` imports: ``a.b`` for ``import a.b`` and both ``a`` and
    ``a.b`` for ``from a import b``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _reaches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize(("folder", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_no_import_against_the_direction(folder: str, forbidden: tuple[str, ...]) -> None:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"{folder}: no Python files (moved?)"
    found = sorted((str(p.relative_to(ROOT)), m) for p in files for m in imports(p)
                   if any(_reaches(m, f) for f in forbidden))
    assert found == []


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from ledger import allocate\n    import residuals.cli\n")
    assert {"ledger.allocate", "residuals.cli"} <= imports(src)
    assert _reaches("ledger.store.read", "ledger") and not _reaches("ledgers", "ledger")


def test_every_package_is_covered() -> None:
    assert {r[0].split("/")[0] for r in RULES} | {"dashboard", "residuals"} == set(PACKAGES)
