"""``python -m xce`` / ``xce``: ``info`` (backends found), ``demo`` (the family on every
installed backend, checked to agree with NumPy float64) and ``bench`` (see xce._bench)."""

from __future__ import annotations

import argparse
import importlib
import sys

from ._backends import BACKENDS

__all__ = ["main"]

_DESCRIPTION = (
    "xce: the cross-entropy family of losses for any array type. "
    "Commands: info (the array libraries found), demo (every loss on every installed "
    "library, checked against NumPy float64) and bench (a side-by-side benchmark)."
)

# One entry per library (torch's lists its CUDA devices itself), named as in xce._backends.
_BACKENDS = tuple(dict.fromkeys(backend.package for backend in BACKENDS))


def _load(name):
    """Return ``(asarray, devices, version)`` for an installed backend, else raise ImportError."""
    if name == "numpy":
        import numpy as np

        return np.asarray, ["cpu"], np.__version__
    if name == "array_api_strict":
        mod = importlib.import_module("array_api_strict")
        return (
            mod.asarray,
            [str(d) for d in mod.__array_namespace_info__().devices()],
            mod.__version__,
        )
    if name == "torch":
        import torch

        devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return torch.asarray, devices, torch.__version__
    if name == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        return jnp.asarray, [str(d) for d in jax.devices()], jax.__version__
    if name == "dask":
        import dask
        import dask.array as da

        return da.asarray, ["cpu"], dask.__version__
    if name == "cupy":
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
        return cupy.asarray, [f"cuda:{i}" for i in range(count)], cupy.__version__
    raise ImportError(name)


def _available():
    found = {}
    for name in _BACKENDS:
        try:
            found[name] = _load(name)
        except Exception as exc:  # not installed, or installed without a usable device
            found[name] = exc
    return found


def _info(_args) -> int:
    from importlib.metadata import version as package_version

    import xce

    print(f"xce {xce.__version__} on Python {sys.version.split()[0]}")
    print(f"array-api-compat {package_version('array-api-compat')}, "
          f"array-api-extra {package_version('array-api-extra')}")  # fmt: skip
    print(f"{'backend':<18}{'version':<16}devices")
    for name, found in _available().items():
        if isinstance(found, Exception):
            print(f"{name:<18}{'-':<16}not available ({type(found).__name__}: {found})")
        else:
            _, devices, version = found
            print(f"{name:<18}{version:<16}{', '.join(devices)}")
    return 0


def _demo_cases(np):
    """The family on one small problem: (name, call(xce, asarray) -> value) pairs."""
    import xce
    from xce._array_api import array_namespace

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(8, 5))
    labels = rng.integers(0, 5, size=8)
    soft = rng.dirichlet(np.ones(5), size=8)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    binary = (rng.random((8, 3)) > 0.5).astype(np.float64)
    weights = np.array([1.0, 2.0, 0.5, 1.0, 3.0])

    def squared(value):
        return value * value

    def total(value):
        return array_namespace(value).sum(value)

    return [
        ("sparse CE, logits", lambda a: xce.sparse_categorical_cross_entropy(
            a(labels), a(logits), from_logits=True)),
        ("sparse CE, weights+smoothing", lambda a: xce.sparse_categorical_cross_entropy(
            a(labels), a(logits), from_logits=True, class_weight=a(weights),
            label_smoothing=0.1)),
        ("categorical CE, soft targets", lambda a: xce.categorical_cross_entropy(
            a(soft), a(logits), from_logits=True)),
        ("categorical CE, probabilities", lambda a: xce.categorical_cross_entropy(
            a(soft), a(probs))),
        ("binary CE, logits", lambda a: xce.binary_cross_entropy(
            a(binary), a(logits[:, :3]), from_logits=True, pos_weight=2.0)),
        ("logsumexp (sum of rows)", lambda a: total(xce.logsumexp(a(logits)))),
        ("entropy + KL", lambda a: total(xce.entropy(a(soft)) + xce.kl_divergence(
            a(soft), a(probs)))),
        ("|grad|² sparse CE", lambda a: total(squared(xce.value_and_grad(
            xce.sparse_categorical_cross_entropy)(a(labels), a(logits), from_logits=True)[1]))),
    ]  # fmt: skip


def _to_float(value) -> float:
    from xce._array_api import array_namespace, is_array_api_strict_namespace, is_dask_array

    if is_dask_array(value):  # lazy until here
        value = value.compute()
    xp = array_namespace(value)
    if is_array_api_strict_namespace(xp):  # its non-default devices refuse float()
        value = value.to_device(xp.Device("CPU_DEVICE"))
    return float(value)


def _demo(args) -> int:
    import numpy as np

    cases = _demo_cases(np)
    backends = {n: f for n, f in _available().items() if not isinstance(f, Exception)}
    reference = {name: _to_float(call(np.asarray)) for name, call in cases}
    names = list(backends)
    print(f"{'loss':<32}{'numpy float64':>16}" + "".join(f"{n:>18}" for n in names[1:]))
    worst = 0.0
    for name, call in cases:
        row = f"{name:<32}{reference[name]:>16.10f}"
        for backend in names[1:]:
            asarray = backends[backend][0]
            value = _to_float(call(asarray))
            error = abs(value - reference[name]) / max(1.0, abs(reference[name]))
            worst = max(worst, error)
            row += f"{value:>18.10f}"
        print(row)
    ok = worst <= args.tolerance
    verdict = "agree" if ok else "DISAGREE"
    print(
        f"\nbackends: {', '.join(names)}; largest relative difference from NumPy "
        f"{worst:.2e} ({verdict}, tolerance {args.tolerance:g})"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own parser: see xce._bench
        from ._bench import main as bench

        return bench(argv[1:])
    parser = argparse.ArgumentParser(prog="xce", description=_DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "info",
        help="list the array libraries found, their versions and devices",
        description="List the array libraries xce finds, their versions and devices.",
    ).set_defaults(run=_info)
    demo = commands.add_parser(
        "demo",
        help="run every loss on every installed array library and check that they agree",
        description="Run every loss on every installed array library, compare each result "
        "with NumPy in float64 and print a table.",
    )
    demo.add_argument(
        "--tolerance",
        type=float,
        default=1e-9,
        help="largest relative difference from NumPy float64 that counts as agreeing "
        "(default: %(default)g)",
    )
    demo.set_defaults(run=_demo)
    commands.add_parser(
        "bench",
        help="time xce against torch, plain NumPy and JAX/Optax (see: xce bench --help)",
        add_help=False,
    )
    args = parser.parse_args(argv)
    return args.run(args)
