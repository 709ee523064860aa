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
import dataclasses
import importlib
import inspect
import pathlib

import pytest

import xce
from xce._backends import BACKEND_NAMES
from xce._docs import support_table_markdown, support_table_rst
from xce._table import ALL_LOSSES, KERNEL_KINDS, LOSSES, loss_info, support_table

PACKAGE = pathlib.Path(xce.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 420


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: pathlib.Path) -> list[str]:
    name = _module_name(path).split(".")
    return name if path.name == "__init__.py" else name[:-1]


def _resolve(package: list[str], node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` in a module of ``package`` reads from."""
    if node.level == 0:
        return node.module or ""
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _private_name_uses(source: str, package: list[str]) -> list[str]:
    """Where the module ``source`` of ``package`` imports or reads another's private name."""
    tree = ast.parse(source)
    found = []
    module_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            origin = _resolve(package, node)
            if not origin.startswith("xce"):
                continue
            for alias in node.names:
                if _is_module(f"{origin}.{alias.name}"):
                    module_aliases.add(alias.asname or alias.name)
                elif alias.name.startswith("_"):
                    found.append(f"line {node.lineno}: from {origin} import {alias.name}")
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
    assert _private_name_uses(path.read_text(encoding="utf-8"), _package_of(path)) == []


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
    probe = (
        '"""probe"""\nfrom ._pipeline import _eps_for\nfrom . import _pipeline\n_pipeline._finish\n'
    )
    found = _private_name_uses(probe, ["xce"])
    assert len(found) == 2, found


def test_every_public_loss_is_a_row_of_the_table():
    rows = {info.name for info in ALL_LOSSES}
    public_losses = {name for name in xce.__all__ if name.endswith(("cross_entropy", "_loss"))}
    assert rows == public_losses
    for info in ALL_LOSSES:
        assert info.public is getattr(xce, info.name)
        assert callable(info.driver)
    for info in LOSSES:
        assert callable(info.logits_kernel) and callable(info.probabilities_kernel)
        assert info.logits_kernel is not info.probabilities_kernel


@pytest.mark.parametrize("info", ALL_LOSSES, ids=lambda info: info.name)
def test_public_docstrings_carry_the_generated_support_table(info):
    doc = inspect.getdoc(info.public)
    assert support_table_rst(info) in doc
    for backend in BACKEND_NAMES:
        assert backend in doc
    assert doc.index("Backend support") < doc.index("Examples")


def test_support_table_follows_the_rows_capabilities():
    """The docstrings' table is derived from the row: a loss without value checks, lazy
    safety or autodiff, with a known failure, is documented as such on the right backends."""
    info = dataclasses.replace(
        loss_info("sparse_categorical_cross_entropy"),
        value_checks=False, lazy_safe=False, autodiff=False,
        known_failures={"dask": "a reason"},
    )  # fmt: skip
    rows = {row[0]: row[1:] for row in support_table(info)}
    assert rows["numpy"] == (KERNEL_KINDS["native"], "not checked", "—", "CI")
    assert rows["jax"] == ("not supported (it reads values)", "not checked", "—", "CI")
    assert rows["dask"][1] == "fails: a reason"
    assert rows["cupy"][3] == "needs a GPU (not yet run)"
    plain = {row[0]: row[1:] for row in support_table(loss_info(info.name))}
    assert plain["numpy"] == (KERNEL_KINDS["native"], "raise", "—", "CI")
    assert plain["torch"][2] == "autograd"
    assert plain["jax"][:3] == (KERNEL_KINDS["jit"], plain["jax"][1], "jax.grad")
    assert plain["jax"][1].startswith("NaN entry (bad label")


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
    for qualname, obj in public:
        if inspect.isclass(obj) and hasattr(obj, "_fields"):  # a NamedTuple: typed fields
            assert set(obj._fields) <= set(inspect.get_annotations(obj)), qualname
            continue
        # A class (the twins' Loss classes): its constructor and the methods that compute.
        methods = [
            (f"{qualname}.{name}", vars(obj)[name])
            for name in ("__init__", "__call__", "call", "forward")
            if inspect.isclass(obj) and name in vars(obj)
        ]
        for name, fn in methods if inspect.isclass(obj) else [(qualname, obj)]:
            hints = inspect.get_annotations(fn)
            assert "return" in hints, f"{name} has no return annotation"
            parameters = set(inspect.signature(fn).parameters) - {"self"}
            assert parameters <= set(hints), f"{name}: unannotated parameters"
        assert not inspect.isclass(obj) or methods, f"{qualname}: no method to check"
