"""The concepts added on the registry (one file each): gaussian_noise, log_cosh, rlw.

Each is checked against its definition computed independently here, not against itself.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from polytask.compiler.layers import LayerStackError, infer_layers
from polytask.compiler.weighting import StepInputs, WeightingContext
from polytask.compiler.weighting.rlw import RlwParams
from polytask.spec.layers import Layer
from polytask.spec.registry import LAYERS, LOSSES, WEIGHTINGS


def test_log_cosh_is_log_of_cosh_and_stays_finite():
    loss = LOSSES.get("log_cosh")
    params = loss.default_params()
    error = np.linspace(-6, 6, 49).astype(np.float32)
    labels = np.zeros((49, 1), np.float32)
    reference = np.log(np.cosh(error.astype(np.float64)))
    trained = loss.per_example(params, tf.constant(labels), tf.constant(error[:, None])).numpy()
    served = loss.numpy_loss(params, labels, {"prediction": error[:, None]})
    assert np.max(np.abs(trained - reference)) < 1e-5 and np.max(np.abs(served - reference)) < 1e-5
    huge = loss.per_example(params, tf.constant([[0.0]]), tf.constant([[1000.0]])).numpy()
    assert np.isfinite(huge).all() and abs(huge[0] - (1000 - np.log(2))) < 1e-3  # |e| - log 2 far away
    assert loss.measures == "regression" and loss.output_units(params, type("C", (), {"shape": (3,)})) == 3


def _rlw_weights(params, steps, tasks=4, seed=7):
    transform = WEIGHTINGS.get("rlw")
    state = transform.init(WeightingContext([f"t{i}" for i in range(tasks)], np.ones(tasks, np.float32),
                                            params=params, seed=seed))
    out = []
    for step in steps:
        inputs = StepInputs(losses=tf.ones(tasks), observed=tf.ones(tasks), present=tf.ones(tasks, tf.bool),
                            step=tf.constant(step, tf.int64))
        weights, extra = transform.weigh(state, inputs, tf.ones(tasks))
        assert float(extra) == 0.0
        out.append(weights.numpy())
    return np.array(out)


def test_rlw_draws_softmax_of_a_normal_sample_each_step():
    weights = _rlw_weights(RlwParams(), range(2000))
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-5) and (weights > 0).all()
    assert not np.allclose(weights[0], weights[1])  # a new draw every step
    assert np.allclose(_rlw_weights(RlwParams(), [5])[0], weights[5])  # the same step draws the same (resume)
    # E[softmax(lambda)] = 1/T by symmetry; and its spread matches softmax of N(0, I) samples drawn here.
    assert np.allclose(weights.mean(axis=0), 0.25, atol=0.01)
    reference = np.random.default_rng(0).normal(size=(20000, 4))
    reference = np.exp(reference) / np.exp(reference).sum(axis=1, keepdims=True)
    assert abs(weights.std() - reference.std()) < 0.01


def test_rlw_uniform_weights_stay_within_the_softmax_bounds_of_unit_samples():
    weights = _rlw_weights(RlwParams(distribution="uniform"), range(500), tasks=3)
    low, high = 1 / (1 + 2 * np.e), np.e / (np.e + 2)  # lambda in [0, 1]: extreme softmax values
    assert weights.min() >= low - 1e-6 and weights.max() <= high + 1e-6


def test_gaussian_noise_adds_noise_in_training_only_and_has_no_meta_form():
    layer = Layer.model_validate({"gaussian_noise": {"stddev": 0.5}})
    plans = infer_layers([layer], (64,))
    assert plans[0].output_shape == (64,) and plans[0].param_count == 0
    keras_layer = layer.descriptor.keras(layer.params, "noise")
    x = tf.zeros([256, 64])
    assert float(tf.reduce_max(tf.abs(keras_layer(x, training=False)))) == 0.0
    assert abs(float(tf.math.reduce_std(keras_layer(x, training=True))) - 0.5) < 0.02
    assert LAYERS.get("gaussian_noise").supports("stacked") is None
    with pytest.raises(LayerStackError, match="meta-learning models take no `gaussian_noise` layer: noise would"):
        infer_layers([layer], (64,), "structure.model", "functional")
