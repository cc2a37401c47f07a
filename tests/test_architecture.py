"""Stage layering: a stage imports only from the stages before it and the base modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "polygvc"
STAGES = ["data_prep", "models", "inference", "diagnostics", "reports"]
BASE = {"errors", "atomic", "config", "scenario_config", "__init__"}


def _polygvc_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("polygvc."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("polygvc."):
                    found.add(alias.name.split(".")[1])
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_stage_imports_only_earlier_stages(stage):
    allowed = set(STAGES[: STAGES.index(stage) + 1]) | BASE
    offenders = []
    for path in sorted((PACKAGE / stage).rglob("*.py")):
        bad = _polygvc_imports(path) - allowed
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not offenders, "; ".join(offenders)


def test_base_modules_import_no_stage():
    for name in ("errors", "atomic", "config", "scenario_config"):
        bad = _polygvc_imports(PACKAGE / f"{name}.py") & set(STAGES)
        assert not bad, f"{name}.py imports {sorted(bad)}"
