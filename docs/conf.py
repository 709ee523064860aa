"""Sphinx configuration for the xce documentation (built by ``nox -s docs``)."""

from __future__ import annotations

import importlib
import pathlib
import sys
import types

import xce

project = "xce"
author = "the xce developers"
copyright = "the xce developers"
release = version = xce.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
templates_path = ["_templates"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"xce {release}"
html_static_path = ["_static"]
html_css_files = ["tables.css"]

# Internal references are checked (nox runs sphinx-build -n -W): every :func:/:class: must
# resolve. The frameworks' own names appear in prose as literals, not as references.
nitpicky = True
autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Keras and torch are imported by xce.keras / xce.torch when a class is first looked up; the
# docs build has neither, so their names are stand-ins while the classes are documented.
autodoc_mock_imports = ["torch"]


def _keras_stand_in() -> None:
    """A minimal ``keras`` for xce.keras's classes to subclass: the Loss base and the saving
    decorator (Sphinx's mock returns a mock from the decorator, so autodoc saw no class)."""

    class Loss:
        """Stand-in for ``keras.losses.Loss``."""

    keras = types.ModuleType("keras")
    keras.losses = types.SimpleNamespace(Loss=Loss)
    keras.saving = types.SimpleNamespace(
        register_keras_serializable=lambda package=None, name=None: lambda cls: cls
    )
    sys.modules["keras"] = keras


_keras_stand_in()

# The public modules and what each exports: the API pages list every name in __all__, so a
# function added to a module appears in the reference without editing the docs.
API_MODULES = {
    "xce": "The losses, the building blocks and value_and_grad.",
    "xce.distributed": "Class-sharded (vocab-parallel) cross entropy: see the guide's "
    "*Beyond one device*.",
    "xce.compat.keras": "Twins of keras.losses.",
    "xce.compat.torch": "Twins of torch.nn.functional and torch.nn's loss classes.",
    "xce.compat.tf": "Twins of tf.nn.",
    "xce.compat.optax": "Twins of optax.losses.",
    "xce.compat.sklearn": "Twin of sklearn.metrics.log_loss.",
    "xce.keras": "Keras 3 loss objects.",
    "xce.torch": "torch.nn.Module losses.",
}


def _write_api_pages() -> None:
    here = pathlib.Path(__file__).parent / "api"
    for name, blurb in API_MODULES.items():
        module = importlib.import_module(name)
        title = f"``{name}``"
        lines = [
            title,
            "=" * len(title),
            "",
            blurb,
            "",
            f".. automodule:: {name}",
            "",
            f".. currentmodule:: {name}",
            "",
            ".. autosummary::",
            "   :toctree: generated",
            "   :nosignatures:",
            "",
        ]
        lines += [f"   {member}" for member in module.__all__ if member[0] != "_"]
        page = "\n".join(lines) + "\n"
        path = here / f"{name}.rst"
        if not path.exists() or path.read_text(encoding="utf-8") != page:
            path.write_text(page, encoding="utf-8")


_write_api_pages()
