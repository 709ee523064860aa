"""Class-sharded losses on JAX (issue 19): ``xce.distributed.jax_class_shard`` inside
``jax.shard_map``, and the plain losses on logits laid out by a ``NamedSharding``.

The multi-device cases run in their own interpreter with four forced CPU devices
(``tests/distributed_jax_script.py``: XLA's device count is fixed when JAX starts); it checks
every loss, option and reduction against the unsharded call and the float64 NumPy
references, and reads the compiled programs' collectives. The one-device checks (bad
input, a traced ``start``) run here; the docstring's example runs in test_docstrings.py.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import reference

import xce

TESTS = pathlib.Path(__file__).parent


def skip_unless_jax(backend):
    if backend != "jax":
        pytest.skip(f"{backend}: jax_class_shard and NamedSharding are JAX's (the jax session)")


@pytest.fixture
def jax_only(backend, request):
    skip_unless_jax(backend)
    request.getfixturevalue("xp")  # loads JAX with float64 enabled


@pytest.fixture(scope="module")
def four_devices(backend):
    """The JSON line of the four-device script (run once for the module's tests)."""
    skip_unless_jax(backend)  # before the run: a module fixture is made before jax_only
    script = TESTS / "distributed_jax_script.py"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_shard_map_and_named_sharding_match_the_unsharded_losses(jax_only, four_devices):
    result = four_devices
    assert result["devices"] == 4, "XLA did not give the child interpreter four CPU devices"
    # 8 shard_map cases (3 losses × every option, 2 and 4 devices, float32 and float64, a
    # tuple of axes) and 12 NamedSharding ones (2 losses × 3 programs × 2 layouts).
    assert result["cases"] == 20
    assert not result["failures"], "\n".join(result["failures"])


def test_collectives_are_per_row_scalars_and_the_backward_adds_none(jax_only, four_devices):
    # The script already failed any collective larger than a few scalars per row; here the
    # counts: the forward needs at most three (max, stacked sums, the class weights' ω, which
    # XLA may combine), and jax.grad inside shard_map adds none to the forward's.
    counts = four_devices["collectives"]
    assert 2 <= counts["shard_map forward"] <= 3, counts
    assert counts["shard_map value and jax.grad"] == counts["shard_map forward"], counts
    named = {k: v for k, v in counts.items() if k.startswith("NamedSharding")}
    assert len(named) == 12 and all(1 <= v <= 8 for v in named.values()), named


def one_device_mesh():
    import jax
    from jax.sharding import Mesh

    return Mesh(np.array(jax.devices()[:1]), ("classes",))


def test_traced_start_and_bad_shards(jax_only):
    import jax
    import jax.numpy as jnp
    from jax import lax
    from jax.sharding import PartitionSpec as P

    x = np.array([[1.0, 2.0, 0.5, -1.0], [0.0, 0.5, 3.0, 1.0]])
    y = np.array([1, 3])

    def mapped(make_shard):
        def loss(labels, logits):
            return xce.sparse_categorical_cross_entropy(
                labels, logits, from_logits=True, class_shard=make_shard()
            )

        return jax.shard_map(loss, mesh=one_device_mesh(), in_specs=(P(), P(None, "classes")),
                             out_specs=P())  # fmt: skip

    # A start computed from the axis index (a traced integer) is taken as given.
    traced = mapped(lambda: xce.distributed.jax_class_shard(
        4, "classes", start=lax.axis_index("classes") * 4))  # fmt: skip
    expected = reference.sparse_categorical_cross_entropy(y, x, from_logits=True)
    np.testing.assert_allclose(np.asarray(traced(jnp.asarray(y), jnp.asarray(x))), expected,
                               rtol=1e-12)  # fmt: skip
    with pytest.raises(ValueError, match="uneven shards need an explicit start"):
        mapped(lambda: xce.distributed.jax_class_shard(6, "classes"))(y, x)
    with pytest.raises(ValueError, match="num_classes"):
        xce.distributed.jax_class_shard(1, "classes")
    with pytest.raises(ValueError, match="start"):
        xce.distributed.jax_class_shard(4, "classes", start=4)
    with pytest.raises(ValueError, match="start"):
        xce.distributed.jax_class_shard(4, "classes", start=jnp.zeros(2, dtype=jnp.int32))
