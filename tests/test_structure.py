"""The house rules that keep xce readable, checked on its source.

- No module imports another module's underscore names (private *modules* of the package
  may be imported; their private *names* stay inside them), nor reads them as attributes.
- Every module says what it exports (``__all__``) and stays short enough to read in one
  sitting.
- The table of losses and the public API agree: every loss is a row, every row a public
  function whose docstring carries the support table generated from the row, and the
  README's table is the generated one.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib

import pytest

import xce
from xce._backends import BACKEND_NAMES
from xce._docs import support_table_markdown, support_table_rst
from xce._table import LOSSES

PACKAGE = pathlib.Path(xce.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 420


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: pathlib.Path) -> list[str]:
    name = _module_name(path).split(".")
    return name if path.name == "__init__.py" else name[:-1]


def _resolve(path: pathlib.Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` in ``path`` reads from."""
    if node.level == 0:
        return node.module or ""
    package = _package_of(path)
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _private_name_uses(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    module_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            source = _resolve(path, node)
            if not source.startswith("xce"):
                continue
            for alias in node.names:
                if _is_module(f"{source}.{alias.name}"):
                    module_aliases.add(alias.asname or alias.name)
                elif alias.name.startswith("_"):
                    found.append(f"line {node.lineno}: from {source} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("xce"):
                    module_aliases.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_uses_another_modules_private_names(path):
    assert _private_name_uses(path) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_declare_their_exports_and_stay_short(path):
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    assert ast.get_docstring(tree), "every module says what it holds"
    if path.name not in ("__main__.py",) and any(
        isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
        for node in tree.body
    ):
        assert "__all__" in text, "a module with public names lists them in __all__"
    assert len(text.splitlines()) <= MAX_LINES


def test_the_private_name_check_catches_both_forms():
    """The checker itself: a private name imported, and one read off a module alias."""
    bad = PACKAGE / "_structure_probe.py"
    bad.write_text(
        '"""probe"""\nfrom ._pipeline import _eps_for\nfrom . import _pipeline\n'
        "_pipeline._finish\n",
        encoding="utf-8",
    )
    try:
        found = _private_name_uses(bad)
    finally:
        bad.unlink()
    assert len(found) == 2, found


def test_every_public_loss_is_a_row_of_the_table():
    rows = {info.name for info in LOSSES}
    public_losses = {name for name in xce.__all__ if name.endswith("cross_entropy")}
    assert rows == public_losses
    for info in LOSSES:
        assert info.public is getattr(xce, info.name)
        assert callable(info.driver)
        assert info.logits_kernel is not info.probabilities_kernel


@pytest.mark.parametrize("info", LOSSES, ids=lambda info: info.name)
def test_public_docstrings_carry_the_generated_support_table(info):
    doc = inspect.getdoc(info.public)
    assert support_table_rst(info) in doc
    for backend in BACKEND_NAMES:
        assert backend in doc
    assert doc.index("Backend support") < doc.index("Examples")


def test_readme_support_table_is_the_generated_one():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    assert support_table_markdown() in readme, (
        "README.md's backend-support table is out of date: paste the output of "
        "python -c 'from xce._docs import support_table_markdown as t; print(t())'"
    )


COMPAT_MODULES = ("keras", "optax", "sklearn", "tf", "torch")


def test_public_api_has_type_hints():
    public = [(f"xce.{name}", getattr(xce, name)) for name in xce.__all__]
    for module_name in COMPAT_MODULES:  # the framework twins (they import no framework)
        module = importlib.import_module(f"xce.compat.{module_name}")
        public += [(f"{module.__name__}.{name}", getattr(module, name)) for name in module.__all__]
    for qualname, fn in public:
        hints = inspect.get_annotations(fn)
        assert "return" in hints, f"{qualname} has no return annotation"
        parameters = inspect.signature(fn).parameters
        assert set(parameters) <= set(hints), f"{qualname}: unannotated parameters"
