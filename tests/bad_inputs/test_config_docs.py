"""docs/config.md matches the generator output from the pydantic config models."""

from __future__ import annotations

import importlib.util

from polygvc.config import RunConfig

from .factory import REPO_ROOT


def _generator():
    path = REPO_ROOT / "scripts" / "gen_config_docs.py"
    spec = importlib.util.spec_from_file_location("gen_config_docs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_docs_up_to_date():
    generated = _generator().render()
    committed = (REPO_ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == generated, (
        "docs/config.md is out of date. Fix: run .venv/bin/python scripts/gen_config_docs.py"
    )


def test_config_docs_list_every_key():
    text = (REPO_ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    for section, field in RunConfig.model_fields.items():
        if field.exclude:
            continue
        assert f"[{section}]" in text, section
        model = field.annotation
        for key in getattr(model, "model_fields", {}):
            if key != "root":
                assert f"| `{key}` |" in text, f"{section}.{key} missing from docs/config.md"
