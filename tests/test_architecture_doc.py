"""docs/architecture.md is checked against the code: every module, function and file it names
in backticks exists, and the layers it describes are the import contract's."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text()
NAMES = sorted(set(re.findall(r"`([^`\s]+)`", DOC)))
DOTTED = [n for n in NAMES if re.fullmatch(r"(inbox|statuses|channels_app|config)(\.\w+)+", n)]
PATHS = [n for n in NAMES if "/" in n and "<" not in n and not n.startswith("/")]


def resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            found = getattr(found, attr)
        return found
    raise ModuleNotFoundError(dotted)


def test_the_doc_names_code():
    assert len(DOTTED) > 30 and PATHS


@pytest.mark.parametrize("dotted", DOTTED)
def test_every_named_module_and_function_exists(dotted):
    assert resolve(dotted) is not None


@pytest.mark.parametrize("path", PATHS)
def test_every_named_file_exists(path):
    assert (ROOT / path).exists(), path


def test_every_layered_module_in_the_doc_is_in_the_import_contract():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    in_contract = {m.strip() for layer in layers for m in re.split(r"[:|]", layer)}
    named_modules = {n for n in DOTTED if n in in_contract or n.count(".") == 1}
    missing = {
        n
        for n in named_modules
        if importlib.util.find_spec(n) is not None
        and not any(n == m or n.startswith(m + ".") for m in in_contract)
    }
    assert not missing
