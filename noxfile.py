"""One conformance suite, one nox session per array library.

``nox`` runs the CPU matrix (the numpy session also runs the docstrings' examples), lint
(ruff and mypy), the docs site and the wheel/sdist build check; ``nox -s cupy torch_cuda``
runs the GPU sessions, which skip cleanly where there is no GPU. Each session sets
``XCE_BACKENDS`` so that the suite fails (instead of skipping) if its backend did not
install. Backends with a native fast path run the suite a second time with
``XCE_DISABLE_FAST_PATHS=1``, proving fast and generic paths agree.
The ``compat`` session installs the real frameworks and runs ``tests/compat`` (``xce.compat``
against them, on every CPU backend) with ``XCE_REQUIRE_PEERS=1``: a missing peer fails.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import sys

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

# An unpinned torch pulls several GB of CUDA wheels; the pinned CPU build is what these
# machines install from a local file. Elsewhere, override: XCE_TORCH_SPEC="torch>=2.4".
TORCH = os.environ.get("XCE_TORCH_SPEC", "torch==2.13.0")
CUPY = os.environ.get("XCE_CUPY_SPEC", "cupy-cuda12x")


def _load_backends():
    """xce/_backends.py, the one list of backends, loaded by path: xce is not installed here."""
    path = pathlib.Path(__file__).parent / "xce" / "_backends.py"
    spec = importlib.util.spec_from_file_location("xce_backends_for_nox", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module.BACKENDS


BACKENDS = _load_backends()
# What each session installs besides xce[test]: the backend's library (pinned where needed).
PACKAGES = {
    "numpy": ["matplotlib"],  # the benchmark chart's test (the `bench` extra)
    "array_api_strict": [],
    "torch": [TORCH],
    "torch_cuda": [TORCH],
    "jax": ["jax"],
    "dask": ["dask[array,distributed]"],  # distributed: tests/test_dask_cluster.py
    "cupy": [CUPY],
}
CPU_BACKENDS = {b.name: PACKAGES[b.name] for b in BACKENDS if not b.gpu}
GPU_BACKENDS = {b.name: PACKAGES[b.name] for b in BACKENDS if b.gpu}
HAS_FAST_PATH = {b.name for b in BACKENDS if b.fast_path}

nox.options.sessions = [*CPU_BACKENDS, "compat", "lint", "docs", "build"]


def _run_suite(session: nox.Session, backend: str) -> None:
    env = {"XCE_BACKENDS": backend}
    # tests/compat compares against the real frameworks: the compat session runs it.
    args = ["--ignore=tests/compat", *session.posargs]
    session.run("pytest", *args, env=env)
    if backend in HAS_FAST_PATH:
        session.run("pytest", *args, env={**env, "XCE_DISABLE_FAST_PATHS": "1"})
    if backend == "numpy":
        # The docstrings' examples, which are written with NumPy arrays. The modules that
        # import a framework at the top (the torch fast path, the CTC kernels of torch, JAX
        # and Dask, the Keras/torch loss objects, the TensorFlow namespace) are left out: this
        # session installs none of them, and they have no examples of their own.
        session.run("pytest", "--doctest-modules", "xce", "--ignore=xce/_fast/_torch",
                    "--ignore=xce/keras.py", "--ignore=xce/torch.py",
                    "--ignore=xce/_tensorflow.py", "--ignore=xce/_ctc_torch.py",
                    "--ignore=xce/_ctc_jax.py", "--ignore=xce/_ctc_dask.py",
                    # The class shards' examples run in the torch and jax sessions
                    # (tests/test_docstrings.py).
                    "--ignore=xce/distributed/_torch.py", "--ignore=xce/distributed/_jax.py",
                    env=env)  # fmt: skip


def _cpu_session(backend: str, packages: list[str]):
    @nox.session(name=backend)
    def session(session: nox.Session) -> None:
        session.install("-e", ".[test]", *packages)
        _run_suite(session, backend)

    return session


for _name, _packages in CPU_BACKENDS.items():
    globals()[f"tests_{_name}"] = _cpu_session(_name, _packages)


# The libraries xce.compat imitates (tensorflow-cpu installs from the registry in about a
# minute here).
COMPAT_PEERS = [TORCH, "jax", "keras", "optax", "scikit-learn", "tensorflow-cpu"]


@nox.session
def compat(session: nox.Session) -> None:
    """xce.compat against the real Keras (JAX backend), PyTorch, TensorFlow, Optax and
    scikit-learn, with every CPU backend's arrays as input; a missing peer fails."""
    session.install("-e", ".[test]", "dask[array]", *COMPAT_PEERS)
    env = {
        "KERAS_BACKEND": "jax",
        "XCE_REQUIRE_PEERS": "1",
        "XCE_BACKENDS": ",".join(CPU_BACKENDS),
    }
    session.run("pytest", "tests/compat", *session.posargs, env=env)
    # The Loss objects' examples and docstrings need Keras and torch, which only this session
    # installs.
    session.run("pytest", "--doctest-modules", "xce/keras.py", "xce/torch.py",
                "tests/test_docstrings.py", env=env)  # fmt: skip


def _gpu_present() -> bool:
    return shutil.which("nvidia-smi") is not None


def _gpu_session(backend: str, packages: list[str]):
    @nox.session(name=backend)
    def session(session: nox.Session) -> None:
        """The suite on a CUDA GPU; skipped where there is none (for torch_cuda, install a
        CUDA torch build first or set XCE_TORCH_SPEC)."""
        if not _gpu_present():
            session.skip("no NVIDIA GPU on this machine (nvidia-smi not found)")
        session.install("-e", ".[test]", *packages)
        _run_suite(session, backend)

    return session


for _name, _packages in GPU_BACKENDS.items():
    globals()[f"tests_{_name}"] = _gpu_session(_name, _packages)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and mypy on the package (its settings are in pyproject.toml)."""
    session.install("-e", ".", "ruff", "mypy")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "xce")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (Sphinx, docs/): warnings are errors and every internal
    reference must resolve (-n). HTML in docs/_build/html."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-n", "-W", "--keep-going", "-b", "html", "docs",
                "docs/_build/html", *session.posargs)  # fmt: skip


@nox.session
def build(session: nox.Session) -> None:
    """The wheel and sdist build (python -m build, into a temporary folder) and twine's check
    of their metadata, README included."""
    session.install("build", "twine")
    outdir = session.create_tmp()
    for old in pathlib.Path(outdir).glob("xce-*"):
        old.unlink()
    session.run("python", "-m", "build", "--outdir", outdir, ".")
    dists = sorted(str(path) for path in pathlib.Path(outdir).glob("xce-*"))
    session.run("twine", "check", "--strict", *dists)
