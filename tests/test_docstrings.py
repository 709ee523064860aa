"""Every public docstring is complete numpydoc: numpydoc's own validator (the checks of
``numpydoc lint``) over every public name of xce and xce.compat.*, and of xce.keras /
xce.torch where their framework is installed. The docstrings' examples run as doctests (the
numpy session's ``--doctest-modules``); this checks their form."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect

import pytest
from numpydoc.validate import validate  # in the test extra

# What the validator may report, and why the project does without it.
IGNORED = {
    "ES01": "no extended summary: a short function's summary and math say it all",
    "SA01": "no See Also: the API pages list every loss side by side",
}
# Methods are called through their class, whose docstring has the runnable example (which
# also documents ``__call__``: dunder methods are not checked).
IGNORED_IN_METHODS = {"EX01": "the class's example calls the method"}

MODULES = [
    "xce", "xce.distributed",
    *(f"xce.compat.{name}" for name in ("keras", "optax", "sklearn", "tf", "torch")),
]  # fmt: skip
# The loss objects are made (and their framework imported) when first looked up.
FRAMEWORK_MODULES = {"xce.keras": "keras", "xce.torch": "torch"}


def _public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        names.append(f"{module_name}.{name}")
        if inspect.isclass(obj):
            names += [
                f"{module_name}.{name}.{member}"
                for member, value in vars(obj).items()
                if not member.startswith("_") and inspect.isfunction(value)
            ]
    return names


def _check(qualname: str, is_method: bool) -> None:
    ignored = set(IGNORED) | (set(IGNORED_IN_METHODS) if is_method else set())
    errors = [
        f"{code}: {message}"
        for code, message in validate(qualname)["errors"]
        if code not in ignored
    ]
    assert not errors, f"{qualname}:\n" + "\n".join(errors)


NAMES = [name for module in MODULES for name in _public_names(module)]


def test_every_public_module_is_covered():
    # xce's public functions and the compat twins: a module left out of MODULES fails here.
    import xce.compat

    assert len(NAMES) > 60
    assert set(xce.compat.__all__) == {name.split(".")[2] for name in MODULES[2:]}


@pytest.mark.parametrize("qualname", NAMES)
def test_docstring_is_numpydoc(qualname):
    owner = qualname.rsplit(".", 1)[0]
    _check(qualname, is_method=owner not in MODULES)


@pytest.mark.parametrize("module_name", sorted(FRAMEWORK_MODULES))
def test_loss_objects_docstrings_are_numpydoc(module_name, monkeypatch):
    framework = FRAMEWORK_MODULES[module_name]
    if framework == "keras":
        # Keras reads its backend once, at import; JAX or torch, whichever is installed.
        monkeypatch.setenv("KERAS_BACKEND", "jax" if _installed("jax") else "torch")
    pytest.importorskip(framework, reason=f"{module_name}'s classes need {framework}")
    for qualname in _public_names(module_name):
        _check(qualname, is_method=qualname.count(".") > 2)
    # The classes are made on first lookup, so --doctest-modules never sees their examples.
    module = importlib.import_module(module_name)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for name in module.__all__:
        test = doctest.DocTestParser().get_doctest(
            getattr(module, name).__doc__, {}, f"{module_name}.{name}", None, 0
        )
        assert test.examples, f"{module_name}.{name} has no example"
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# The class shards' factories import their framework when called: their examples run in the
# session that has it (the numpy session's --doctest-modules leaves their modules out).
SHARD_FACTORIES = {"torch_class_shard": "torch", "jax_class_shard": "jax"}


@pytest.mark.parametrize("name", sorted(SHARD_FACTORIES))
def test_class_shard_examples_run(name):
    pytest.importorskip(SHARD_FACTORIES[name], reason=f"{name}'s example needs its framework")
    import xce.distributed

    module = importlib.import_module(getattr(xce.distributed, name).__module__)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    tests = [t for t in finder.find(module) if t.examples]
    assert tests, f"{module.__name__} has no example"
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
