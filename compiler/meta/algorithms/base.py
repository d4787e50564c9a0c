"""What every meta-learning algorithm provides, and the shared machinery of the MAML family.

An algorithm turns meta-parameters theta (dict name -> tensor, no task axis) and a
meta-batch of episodes (see `families.base`) into:

- `meta_gradients`: the gradient of the meta-objective summed over the tasks of this
  batch (callers scale by 1 / global meta-batch), plus per-task metrics;
- `evaluate`: per-task query metrics after 0, 1, ..., k adaptation steps (the adaptation
  curve; algorithms without steps, like protonet, report one point);
- `predict`: query outputs after adapting on a support set (few-shot on a new task).

All of them work on T tasks at once through the functional model's task axis.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Optional

import tensorflow as tf

from polytask.compiler.meta.functional import FunctionalModel, tile_params
from polytask.compiler.meta.losses import TaskLoss
from polytask.errors import PolytaskError

_ALGORITHMS: dict[str, type] = {}


def register_algorithm(name: str):
    def decorate(cls):
        cls.name = name
        _ALGORITHMS[name] = cls
        return cls

    return decorate


def _import_all() -> None:
    package = importlib.import_module("polytask.compiler.meta.algorithms")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def available_algorithms() -> list[str]:
    _import_all()
    return sorted(_ALGORITHMS)


def get_algorithm(name: str) -> type:
    if name not in _ALGORITHMS:
        _import_all()
    if name not in _ALGORITHMS:
        raise PolytaskError(f"unknown meta-learning algorithm '{name}'",
                            hint=f"available: {', '.join(available_algorithms())}")
    return _ALGORITHMS[name]


class MetaAlgorithm:
    """Base class. `theta` holds the model's meta-parameters, `extra` the algorithm's own
    meta-learned tensors (e.g. Meta-SGD's learning rates)."""

    name = ""
    #: The algorithm classifies by comparing embeddings (no output layer, any number of ways).
    metric_based = False

    def __init__(self, model: FunctionalModel, structure, loss: TaskLoss, description):
        self.model = model
        self.structure = structure
        self.loss = loss
        self.description = description
        self.inner_steps = structure.inner.steps
        self.eval_steps = structure.inner.eval_steps or structure.inner.steps
        self.inner_lr = structure.inner.learning_rate
        self.transductive = getattr(structure, "transductive_batch_norm", False)

    def extra_variables(self) -> dict[str, tf.Tensor]:
        """Initial values of extra meta-learned tensors (trained with the model)."""
        return {}

    def meta_gradients(self, theta, extra, batch, *, ways: Optional[int] = None):
        """(grads for theta, grads for extra, per-task metrics) of the summed meta-objective."""
        variables = {**theta, **extra}
        with tf.GradientTape() as tape:
            tape.watch(list(variables.values()))
            metrics = self.meta_loss(theta, extra, batch, ways=ways)
            total = tf.reduce_sum(metrics["loss"])
        grads = tape.gradient(total, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return ({k: grads[k] for k in theta}, {k: grads[k] for k in extra}, metrics)

    def meta_loss(self, theta, extra, batch, *, ways=None) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def evaluate(self, theta, extra, batch, *, steps: Optional[int] = None, ways=None) -> list[dict]:
        """Per-task query metrics after each of 0..steps adaptation steps: a list of dicts of [T]."""
        raise NotImplementedError

    def predict(self, theta, extra, support_x, support_y, query_x, *, steps: Optional[int] = None,
                ways=None) -> tf.Tensor:
        """Query outputs [T, Q, out] (logits or regression values) after adapting on the support set."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers

    def query_outputs(self, params, support_x, query_x, *, start: int = 0) -> tf.Tensor:
        """Query predictions; batch norm uses the support set's statistics unless transductive."""
        if self.transductive or not self.model.has_batch_norm:
            return self.model(params, query_x, start=start)
        count = support_x.shape[1] if support_x.shape[1] is not None else tf.shape(support_x)[1]
        joint = tf.concat([support_x, query_x], axis=1)
        return self.model(params, joint, start=start, stats_count=count)[:, count:]


class GradientBasedAlgorithm(MetaAlgorithm):
    """MAML and relatives: adapt (some) parameters with gradient steps on the support loss."""

    #: Differentiate through the inner gradients (second-order meta-gradient).
    second_order = True

    def adapted_names(self) -> list[str]:
        """The parameters the inner loop adapts (default: all)."""
        return self.model.param_names

    def body_stop(self) -> int:
        """Layers [0, body_stop) are not adapted and are computed once per task (ANIL)."""
        return 0

    def step_sizes(self, extra) -> dict:
        """Inner learning rate per adapted parameter (scalars, or tensors for Meta-SGD)."""
        return {name: self.inner_lr for name in self.adapted_names()}

    def inner_step(self, fast, extra, x, y, *, ways=None, start: int = 0, first_order: bool = False):
        """One gradient step on the support loss, for every task at once."""
        names = self.adapted_names()
        with tf.GradientTape() as tape:
            tape.watch([fast[n] for n in names])
            support_loss = tf.reduce_sum(self.loss(self.model(fast, x, start=start), y, ways))
        # The loss is a sum over tasks and task t only touches copy t, so these are the
        # per-task gradients, with a leading task axis.
        grads = tape.gradient(support_loss, [fast[n] for n in names],
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        rates = self.step_sizes(extra)
        updated = dict(fast)
        for name, grad in zip(names, grads):
            if first_order:
                grad = tf.stop_gradient(grad)
            updated[name] = fast[name] - rates[name] * grad
        return updated

    def _prepare(self, theta, support_x, query_x):
        """Tile theta per task; for a frozen body, compute its features once (ANIL)."""
        tasks = support_x.shape[0] if support_x.shape[0] is not None else tf.shape(support_x)[0]
        fast = tile_params(theta, tasks)
        stop = self.body_stop()
        if stop == 0:
            return fast, support_x, query_x, 0
        support_features = self.model(fast, support_x, stop=stop)
        if self.transductive or not self.model.has_batch_norm:
            query_features = self.model(fast, query_x, stop=stop)
        else:
            count = support_x.shape[1] if support_x.shape[1] is not None else tf.shape(support_x)[1]
            joint = self.model(fast, tf.concat([support_x, query_x], 1), stop=stop, stats_count=count)
            query_features = joint[:, count:]
        return fast, support_features, query_features, stop

    def _query(self, fast, sx, qx, start):
        if start:
            return self.model(fast, qx, start=start)  # features already normalised in _prepare
        return self.query_outputs(fast, sx, qx)

    def adapt(self, theta, extra, support_x, support_y, query_x, steps, *, ways=None, first_order=False,
              record=False):
        """Adapt on the support set; returns (fast params, support/query inputs, start[, curve])."""
        fast, sx, qx, start = self._prepare(theta, support_x, query_x)
        outputs = []
        if record:
            outputs.append(self._query(fast, sx, qx, start))
        # Unrolled in Python on purpose: inner steps are few, and higher-order gradients
        # through tf.while_loop are slow and fragile.
        for _ in range(steps):
            fast = self.inner_step(fast, extra, sx, support_y, ways=ways, start=start, first_order=first_order)
            if record:
                outputs.append(self._query(fast, sx, qx, start))
        return fast, sx, qx, start, outputs

    def meta_loss(self, theta, extra, batch, *, ways=None):
        fast, sx, qx, start, _ = self.adapt(theta, extra, batch["support_x"], batch["support_y"],
                                            batch["query_x"], self.inner_steps, ways=ways,
                                            first_order=not self.second_order)
        return self.loss.metrics(self._query(fast, sx, qx, start), batch["query_y"], ways)

    def evaluate(self, theta, extra, batch, *, steps=None, ways=None):
        steps = self.eval_steps if steps is None else steps
        *_, outputs = self.adapt(theta, extra, batch["support_x"], batch["support_y"], batch["query_x"],
                                 steps, ways=ways, first_order=True, record=True)
        return [self.loss.metrics(out, batch["query_y"], ways) for out in outputs]

    def predict(self, theta, extra, support_x, support_y, query_x, *, steps=None, ways=None):
        steps = self.eval_steps if steps is None else steps
        fast, sx, qx, start, _ = self.adapt(theta, extra, support_x, support_y, query_x, steps, ways=ways,
                                            first_order=True)
        outputs = self._query(fast, sx, qx, start)
        return self.loss.logits(outputs, ways) if self.loss.kind == "classification" else outputs
