"""``xce.compat.optax`` against ``optax.losses`` (Optax on JAX), with every backend's arrays.

Hypothesis draws logits, labels, an ``axis`` (int or tuple) and a ``where`` mask (per class or
per example); Optax gets the same dtype-rounded numbers as JAX arrays. Then ``jax.jit`` and
``jax.grad`` through the compat calls on JAX arrays, and the divergences (NaN in Optax).
"""

from __future__ import annotations

import numpy as np
import pytest
from compat_helpers import explore, float_arrays, make_env, shapes, softmax, unit_arrays
from helpers import to_numpy
from hypothesis import strategies as st

from xce.compat import optax as compat


@pytest.fixture
def env(backend, xp, device, dtype):
    return make_env(backend, xp, device, dtype)


def _j(env, data, kind="float"):
    import jax.numpy as jnp

    if kind == "int":
        return jnp.asarray(np.asarray(data, dtype=np.int64))
    if kind == "bool":
        return jnp.asarray(np.asarray(data, dtype=bool))
    return jnp.asarray(env.rounded(data))


# (logits shape, axis): one class axis last or inside, or two class axes.
LAYOUTS = [((3, 4), -1), ((2, 3, 4), -1), ((2, 4, 3), 1), ((2, 3, 2), (1, 2)), ((3, 2), None)]


@st.composite
def soft_problems(draw, env):
    shape, axis = draw(shapes(env, LAYOUTS))
    logits = draw(float_arrays(shape, -10, 10))
    axes = tuple(range(len(shape))) if axis is None else (
        axis if isinstance(axis, tuple) else (axis % len(shape),)
    )  # fmt: skip
    labels = softmax(draw(float_arrays(shape)), axis=axes[-1])
    if draw(st.booleans()):  # one-hot along the (last) class axis
        labels = (labels == labels.max(axis=axes[-1], keepdims=True)).astype(np.float64)
    mode = draw(st.sampled_from(["none", "classes", "rows"]))
    where = None
    if mode == "classes":
        where = draw(st.lists(st.booleans(), min_size=logits.size, max_size=logits.size))
        where = np.asarray(where).reshape(shape)
    elif mode == "rows" and axis is not None:
        batch = tuple(n for i, n in enumerate(shape) if i not in axes)
        where = np.asarray(
            draw(
                st.lists(st.booleans(), min_size=int(np.prod(batch)), max_size=int(np.prod(batch)))
            )
        ).reshape(batch)
    return logits, labels, axis, where


def test_softmax_cross_entropy(env, optax_peer):
    losses = optax_peer.losses

    def case(problem):
        logits, labels, axis, where = problem
        got = compat.softmax_cross_entropy(
            env.array(logits), env.array(labels), axis=axis,
            where=None if where is None else env.array(where, "bool"),
        )  # fmt: skip
        expected = losses.softmax_cross_entropy(
            _j(env, logits), _j(env, labels), axis=axis,
            where=None if where is None else _j(env, where, "bool"),
        )  # fmt: skip
        env.check(got, expected, scale=20)

    explore(env, soft_problems(env), case)


def test_poly_loss_cross_entropy(env, optax_peer):
    losses = optax_peer.losses

    @st.composite
    def problems(draw):
        return (*draw(soft_problems(env)), draw(st.sampled_from([2.0, -1.0, 0.5])))

    def case(problem):
        logits, labels, axis, where, epsilon = problem
        if where is not None and where.ndim != logits.ndim:
            # Optax's poly loss takes element masks only (the compat also takes row masks).
            axes = axis if isinstance(axis, tuple) else (axis % logits.ndim,)
            where = np.broadcast_to(np.expand_dims(where, axes), logits.shape)
        got = compat.poly_loss_cross_entropy(
            env.array(logits), env.array(labels), epsilon=epsilon, axis=axis,
            where=None if where is None else env.array(where, "bool"),
        )  # fmt: skip
        expected = losses.poly_loss_cross_entropy(
            _j(env, logits), _j(env, labels), epsilon=epsilon, axis=axis,
            where=None if where is None else _j(env, where, "bool"),
        )  # fmt: skip
        env.check(got, expected, scale=20)

    explore(env, problems(), case)


@st.composite
def integer_problems(draw, env):
    shape, axis = draw(shapes(env, [l for l in LAYOUTS if l[1] is not None]))  # noqa: E741
    logits = draw(float_arrays(shape, -10, 10))
    axes = axis if isinstance(axis, tuple) else (axis % len(shape),)
    batch = tuple(n for i, n in enumerate(shape) if i not in axes)
    n_classes = int(np.prod([shape[a] for a in axes]))
    labels = np.asarray(
        draw(
            st.lists(
                st.integers(0, n_classes - 1),
                min_size=int(np.prod(batch)),
                max_size=int(np.prod(batch)),
            )
        )
    ).reshape(batch)
    where = None
    if draw(st.booleans()):  # examples masked whole (a masked label class is a divergence)
        where = np.asarray(
            draw(st.lists(st.booleans(), min_size=labels.size, max_size=labels.size))
        ).reshape(batch)
    return logits, labels, axis, where


def test_softmax_cross_entropy_with_integer_labels(env, optax_peer):
    losses = optax_peer.losses

    def case(problem):
        logits, labels, axis, where = problem
        got = compat.softmax_cross_entropy_with_integer_labels(
            env.array(logits), env.array(labels, "int"), axis=axis,
            where=None if where is None else env.array(where, "bool"),
        )  # fmt: skip
        expected = losses.softmax_cross_entropy_with_integer_labels(
            _j(env, logits), _j(env, labels, "int"), axis=axis,
            where=None if where is None else _j(env, where, "bool"),
        )  # fmt: skip
        env.check(got, expected, scale=20)

    explore(env, integer_problems(env), case)


@st.composite
def binary_problems(draw, env):
    shape = draw(shapes(env, [(3, 4), (2, 2, 3)]))
    logits = draw(float_arrays(shape, -20, 20))
    label_shape = draw(st.sampled_from([shape, shape[-1:]]))  # labels broadcast to logits
    labels = draw(unit_arrays(label_shape))
    if draw(st.booleans()):
        labels = np.round(labels)
    alpha = draw(st.sampled_from([None, 0.25, 0.9]))
    gamma = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5]))
    return logits, labels, alpha, gamma


def test_sigmoid_losses(env, optax_peer):
    losses = optax_peer.losses

    def case(problem):
        logits, labels, alpha, gamma = problem
        x, z = env.array(logits), env.array(labels)
        jx, jz = _j(env, logits), _j(env, labels)
        env.check(compat.sigmoid_binary_cross_entropy(x, z),
                  losses.sigmoid_binary_cross_entropy(jx, jz), scale=20)  # fmt: skip
        env.check(compat.sigmoid_focal_loss(x, z, alpha=alpha, gamma=gamma),
                  losses.sigmoid_focal_loss(jx, jz, alpha=alpha, gamma=gamma),
                  scale=20)  # fmt: skip

    explore(env, binary_problems(env), case)


def test_safe_softmax_cross_entropy(env, optax_peer):
    """-inf logits on zero labels: 0, as Optax's safe variant."""
    losses = optax_peer.losses
    logits = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -np.inf]])
    labels = np.array([[0.3, 0.0, 0.7], [1.0, 0.0, 0.0]])
    got = compat.safe_softmax_cross_entropy(env.array(logits), env.array(labels))
    env.check(got, losses.safe_softmax_cross_entropy(_j(env, logits), _j(env, labels)))
    # Optax's plain softmax_cross_entropy gives NaN here; the compat twin gives the same
    # finite value as the safe variant (a documented divergence).
    plain = compat.softmax_cross_entropy(env.array(logits), env.array(labels))
    assert np.isnan(to_numpy(losses.softmax_cross_entropy(_j(env, logits),
                                                          _j(env, labels)))).any()  # fmt: skip
    env.check(plain, to_numpy(got))


@st.composite
def kl_problems(draw, env):
    shape, axis = draw(shapes(env, LAYOUTS))
    log_predictions = np.log(softmax(draw(float_arrays(shape)), axis=-1))
    targets = softmax(draw(float_arrays(shape)), axis=-1)
    if draw(st.booleans()):
        targets.flat[0] = 0.0  # a zero target adds 0
    where = None
    if draw(st.booleans()):
        where = np.asarray(
            draw(st.lists(st.booleans(), min_size=targets.size, max_size=targets.size))
        ).reshape(shape)
    return log_predictions, targets, axis, where


def test_kl_divergences(env, optax_peer):
    losses = optax_peer.losses

    def case(problem):
        log_q, p, axis, where = problem
        w = None if where is None else env.array(where, "bool")
        jw = None if where is None else _j(env, where, "bool")
        got = compat.kl_divergence(env.array(log_q), env.array(p), axis=axis, where=w)
        expected = losses.kl_divergence(_j(env, log_q), _j(env, p), axis=axis, where=jw)
        env.check(got, expected, scale=20)
        log_p = np.log(np.maximum(p, 1e-30))
        got = compat.kl_divergence_with_log_targets(env.array(log_q), env.array(log_p),
                                                    axis=axis, where=w)  # fmt: skip
        expected = losses.kl_divergence_with_log_targets(_j(env, log_q), _j(env, log_p),
                                                         axis=axis, where=jw)  # fmt: skip
        env.check(got, expected, scale=20)

    explore(env, kl_problems(env), case)


def test_jit_and_grad_through_compat(backend, optax_peer):
    if backend != "jax":
        pytest.skip("jax.jit and jax.grad apply to JAX arrays")
    import jax
    import jax.numpy as jnp

    losses = optax_peer.losses
    x = jnp.asarray([[1.0, 2.0, 0.5, -1.0], [0.3, -1.0, 3.0, 0.2]])
    y = jnp.asarray([[0.0, 1.0, 0.0, 0.0], [0.2, 0.3, 0.4, 0.1]])
    mask = jnp.asarray([[True, True, True, False], [True, True, True, True]])
    labels = jnp.asarray([1, 2])
    cases = [
        (compat.softmax_cross_entropy, losses.softmax_cross_entropy, (y,), {"where": mask}),
        (compat.softmax_cross_entropy_with_integer_labels,
         losses.softmax_cross_entropy_with_integer_labels, (labels,), {"where": mask}),
        (compat.poly_loss_cross_entropy, losses.poly_loss_cross_entropy, (y,), {"where": mask}),
        (compat.sigmoid_binary_cross_entropy, losses.sigmoid_binary_cross_entropy, (y,), {}),
        (compat.sigmoid_focal_loss, losses.sigmoid_focal_loss, (y,), {"alpha": 0.25}),
        (compat.kl_divergence, losses.kl_divergence, (y,), {"axis": -1}),
    ]  # fmt: skip
    for mine, theirs, args, kw in cases:

        def total(fn, logits, args=args, kw=kw):
            return jnp.sum(fn(logits, *args, **kw))

        jitted = jax.jit(lambda lg, fn=mine: total(fn, lg))
        np.testing.assert_allclose(jitted(x), total(theirs, x), rtol=1e-12)
        np.testing.assert_allclose(jax.grad(lambda lg, fn=mine: total(fn, lg))(x),
                                   jax.grad(lambda lg, fn=theirs: total(fn, lg))(x),
                                   rtol=1e-10, atol=1e-12)  # fmt: skip


def test_out_of_range_label(env):
    x = env.array(np.array([[0.0, 1.0], [2.0, 0.0]]))
    for bad in (2, -1):  # -1 would silently read the last class in Optax
        y = env.array(np.array([0, bad]), "int")
        if env.checked:
            with pytest.raises(ValueError, match="y_true"):
                compat.softmax_cross_entropy_with_integer_labels(x, y)
        else:
            got = to_numpy(compat.softmax_cross_entropy_with_integer_labels(x, y))
            assert np.isfinite(got[0]) and np.isnan(got[1])


def test_logits_are_never_broadcast_up(env):
    with pytest.raises(ValueError, match="broadcast"):
        compat.sigmoid_binary_cross_entropy(env.array(np.zeros((3, 1))), env.array(np.zeros(3)))


def test_traced_hyperparameters_under_jit_vmap_and_grad(backend, optax_peer):
    # Optax's users jit, vmap and differentiate over gamma, alpha and epsilon.
    if backend != "jax":
        pytest.skip("jax.jit / vmap / grad over a hyperparameter apply to JAX arrays")
    import jax
    import jax.numpy as jnp

    losses = optax_peer.losses
    x = jnp.asarray([[1.0, 2.0, 0.5, -1.0], [0.3, -1.0, 3.0, 0.2]])
    y = jnp.asarray([[0.0, 1.0, 0.0, 0.0], [0.2, 0.3, 0.4, 0.1]])
    cases = [
        ("gamma", 1.5, lambda fn, v: fn(x, y, alpha=0.25, gamma=v),
         compat.sigmoid_focal_loss, losses.sigmoid_focal_loss),
        ("alpha", 0.3, lambda fn, v: fn(x, y, alpha=v, gamma=2.0),
         compat.sigmoid_focal_loss, losses.sigmoid_focal_loss),
        ("epsilon", 1.5, lambda fn, v: fn(x, y, epsilon=v),
         compat.poly_loss_cross_entropy, losses.poly_loss_cross_entropy),
    ]  # fmt: skip
    for name, value, call, mine, theirs in cases:

        def total(v, fn, call=call):
            return jnp.sum(call(fn, v))

        v = jnp.asarray(value)
        np.testing.assert_allclose(jax.jit(total, static_argnums=1)(v, mine), total(v, theirs),
                                   rtol=1e-12, err_msg=name)  # fmt: skip
        values = jnp.asarray([0.5 * value, value])
        np.testing.assert_allclose(jax.vmap(lambda u, c=call, f=mine: c(f, u))(values),
                                   jax.vmap(lambda u, c=call, f=theirs: c(f, u))(values),
                                   rtol=1e-12, err_msg=name)  # fmt: skip
        np.testing.assert_allclose(jax.grad(total)(v, mine), jax.grad(total)(v, theirs),
                                   rtol=1e-10, atol=1e-12, err_msg=name)  # fmt: skip
