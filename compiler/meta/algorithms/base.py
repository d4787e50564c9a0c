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

from typing import TYPE_CHECKING, ClassVar, Optional


from polytask.spec.registry import Concept

if TYPE_CHECKING:
    import tensorflow as tf

    from polytask.compiler.meta.functional import FunctionalModel
    from polytask.compiler.meta.losses import TaskLoss

#: Name prefix of the LSLR learning rates among an algorithm's extra variables.
STEP_SIZES = "step_sizes/"
#: The MAML++ options: fields of `structure.inner` (`polytask.compiler.sharing.meta.InnerLoop`).
MAML_PLUS_PLUS = ("multi_step_loss_iterations", "learn_step_sizes", "first_order_iterations", "per_step_batch_norm")


class Algorithm(Concept):
    """Descriptor of a meta-learning algorithm (`structure.algorithm`): facts and the implementation.

    The facts are class attributes of `implementation` (a `MetaAlgorithm` subclass in the
    same module, whose methods import TensorFlow), so they are written once; `build`
    instantiates it for a compiled program.
    """

    implementation: ClassVar[type]

    @property
    def metric_based(self) -> bool:
        """Classifies by comparing embeddings: no output layer, no inner loop, any number of ways."""
        return self.implementation.metric_based

    @property
    def second_order(self) -> Optional[bool]:
        """Differentiates through the inner gradient steps (None: no inner loop)."""
        return None if self.metric_based else self.implementation.second_order

    @property
    def adapts(self) -> Optional[str]:
        """What the inner loop adapts (None: no inner loop)."""
        return None if self.metric_based else self.implementation.adapts

    @property
    def learned_learning_rates(self) -> bool:
        return self.implementation.learned_learning_rates

    @property
    def outer_step_size(self) -> bool:
        """Uses `structure.reptile_step_size`."""
        return self.implementation.outer_step_size

    def build(self, model, structure, loss, description):
        return self.implementation(model, structure, loss, description)


class MetaAlgorithm:
    """Base class. `theta` holds the model's meta-parameters, `extra` the algorithm's own
    meta-learned tensors (e.g. Meta-SGD's learning rates)."""

    #: Facts read by the descriptor (`Algorithm`): classifies by comparing embeddings (no
    #: output layer, any number of ways); what the inner loop adapts; meta-learned inner
    #: learning rates; an outer interpolation step (`reptile_step_size`).
    metric_based = False
    second_order = False
    adapts = "all parameters"
    learned_learning_rates = False
    outer_step_size = False
    #: The MAML++ options (`structure.inner` fields) this algorithm implements.
    maml_plus_plus: frozenset = frozenset()

    @classmethod
    def supports(cls, option: str) -> bool:
        return option in cls.maml_plus_plus

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

    def meta_gradients(self, theta, extra, batch, *, ways: Optional[int] = None, iteration=None,
                       first_order: Optional[bool] = None):
        """(grads for theta, grads for extra, per-task metrics) of the summed meta-objective.

        `iteration` (the meta-iteration, for schedules such as MAML++'s multi-step loss) and
        `first_order` (derivative-order annealing) are for gradient-based algorithms."""
        import tensorflow as tf

        variables = {**theta, **extra}
        options = {} if iteration is None and first_order is None else {"iteration": iteration,
                                                                         "first_order": first_order}
        with tf.GradientTape() as tape:
            tape.watch(list(variables.values()))
            metrics = self.meta_loss(theta, extra, batch, ways=ways, **options)
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

    def query_outputs(self, params, support_x, query_x, *, start: int = 0, step: int = 0) -> tf.Tensor:
        """Query predictions; batch norm uses the support set's statistics unless transductive.

        `step`: the inner step whose per-step batch-norm weights apply (MAML++)."""
        import tensorflow as tf

        if self.transductive or not self.model.has_batch_norm:
            return self.model(params, query_x, start=start, step=step)
        count = support_x.shape[1] if support_x.shape[1] is not None else tf.shape(support_x)[1]
        joint = tf.concat([support_x, query_x], axis=1)
        return self.model(params, joint, start=start, stats_count=count, step=step)[:, count:]


class GradientBasedAlgorithm(MetaAlgorithm):
    """MAML and relatives: adapt (some) parameters with gradient steps on the support loss."""

    #: Differentiate through the inner gradients (second-order meta-gradient).
    second_order = True
    maml_plus_plus = frozenset(MAML_PLUS_PLUS)

    def __init__(self, model, structure, loss, description):
        super().__init__(model, structure, loss, description)
        inner = structure.inner
        self.learn_step_sizes = bool(inner.learn_step_sizes) and self.supports("learn_step_sizes")
        self.multi_step_iterations = (inner.multi_step_loss_iterations
                                      if self.supports("multi_step_loss_iterations") and self.inner_steps > 1 else None)
        self.first_order_iterations = (int(inner.first_order_iterations)
                                       if self.second_order and self.supports("first_order_iterations") else 0)

    def extra_variables(self):
        """LSLR (MAML++): one learning rate per adapted parameter tensor and inner step."""
        if not self.learn_step_sizes:
            return {}
        import tensorflow as tf

        return {STEP_SIZES + name: tf.fill([self.inner_steps], float(self.inner_lr)) for name in self.adapted_names()}

    def adapted_names(self) -> list[str]:
        """The parameters the inner loop adapts (default: all but per-step batch-norm weights,
        which MAML++ meta-learns only)."""
        fixed = {p.name for p in self.model.architecture.per_step_params()}
        return [name for name in self.model.param_names if name not in fixed]

    def body_stop(self) -> int:
        """Layers [0, body_stop) are not adapted and are computed once per task (ANIL)."""
        return 0

    def step_sizes(self, extra, step: int) -> dict:
        """Inner learning rate per adapted parameter at inner step `step` (scalars, or tensors for Meta-SGD).

        LSLR rates exist for the trained steps only; later steps (evaluation, which `check`
        refuses beyond `inner.steps`) reuse the last one.
        """
        if self.learn_step_sizes:
            index = min(step, self.inner_steps - 1)
            return {name: extra[STEP_SIZES + name][index] for name in self.adapted_names()}
        return {name: self.inner_lr for name in self.adapted_names()}

    def multi_step_weights(self, iteration):
        """MAML++ importance of the query loss after inner steps 1..S at meta-iteration `iteration`
        (Antoniou et al. 2019, the reference code's `get_per_step_loss_importance_vector` with
        epochs as a fraction p of `multi_step_loss_iterations`): non-final weights fall from 1/S
        to at least 0.03/S, the final one rises to at most 1 - 0.03 (S-1)/S; after the
        annealing only the final step counts."""
        import tensorflow as tf

        count = self.inner_steps
        progress = tf.cast(iteration, tf.float32) / float(self.multi_step_iterations)
        floor = 0.03 / count
        early = tf.maximum(1.0 / count - progress / count, floor)
        final = tf.minimum(1.0 / count + progress * (count - 1) / count, 1.0 - (count - 1) * floor)
        annealing = tf.concat([tf.fill([count - 1], early), final[None]], 0)
        last_only = tf.one_hot(count - 1, count)
        return tf.where(progress < 1.0, annealing, last_only)

    def inner_step(self, fast, extra, x, y, *, ways=None, start: int = 0, first_order: bool = False,
                   step: int = 0):
        """One gradient step on the support loss, for every task at once."""
        import tensorflow as tf

        names = self.adapted_names()
        with tf.GradientTape() as tape:
            tape.watch([fast[n] for n in names])
            support_loss = tf.reduce_sum(self.loss(self.model(fast, x, start=start, step=step), y, ways))
        # The loss is a sum over tasks and task t only touches copy t, so these are the
        # per-task gradients, with a leading task axis.
        grads = tape.gradient(support_loss, [fast[n] for n in names],
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        rates = self.step_sizes(extra, step)
        updated = dict(fast)
        for name, grad in zip(names, grads):
            if first_order:
                grad = tf.stop_gradient(grad)
            updated[name] = fast[name] - rates[name] * grad
        return updated

    def _prepare(self, theta, support_x, query_x):
        """Tile theta per task; for a frozen body, compute its features once (ANIL)."""
        from polytask.compiler.meta.functional import tile_params

        import tensorflow as tf

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

    def _query(self, fast, sx, qx, start, step: int = 0):
        """Query outputs after inner step `step` (its per-step batch-norm weights)."""
        if start:
            return self.model(fast, qx, start=start, step=step)  # features already normalised in _prepare
        return self.query_outputs(fast, sx, qx, step=step)

    def adapt(self, theta, extra, support_x, support_y, query_x, steps, *, ways=None, first_order=False,
              record=False):
        """Adapt on the support set; returns (fast params, support/query inputs, start[, curve])."""
        fast, sx, qx, start = self._prepare(theta, support_x, query_x)
        outputs = []
        if record:
            outputs.append(self._query(fast, sx, qx, start))
        # Unrolled in Python on purpose: inner steps are few, and higher-order gradients
        # through tf.while_loop are slow and fragile.
        for step in range(steps):
            fast = self.inner_step(fast, extra, sx, support_y, ways=ways, start=start, first_order=first_order,
                                   step=step)
            if record:  # the query after update `step` uses that step's per-step weights, as MAML++ does
                outputs.append(self._query(fast, sx, qx, start, step))
        return fast, sx, qx, start, outputs

    def meta_loss(self, theta, extra, batch, *, ways=None, iteration=None, first_order=None):
        first_order = (not self.second_order) if first_order is None else first_order
        multi_step = self.multi_step_iterations is not None and iteration is not None
        fast, sx, qx, start, outputs = self.adapt(theta, extra, batch["support_x"], batch["support_y"],
                                                  batch["query_x"], self.inner_steps, ways=ways,
                                                  first_order=first_order, record=multi_step)
        if not multi_step:
            return self.loss.metrics(self._query(fast, sx, qx, start, self.inner_steps - 1), batch["query_y"], ways)
        import tensorflow as tf

        # outputs[0] is before adaptation; steps 1..S are weighted. Metrics are the last step's.
        per_step = [self.loss.metrics(out, batch["query_y"], ways) for out in outputs[1:]]
        weights = self.multi_step_weights(iteration)
        metrics = dict(per_step[-1])
        metrics["loss"] = tf.add_n([weights[s] * point["loss"] for s, point in enumerate(per_step)])
        return metrics

    def evaluate(self, theta, extra, batch, *, steps=None, ways=None):
        steps = self.eval_steps if steps is None else steps
        *_, outputs = self.adapt(theta, extra, batch["support_x"], batch["support_y"], batch["query_x"],
                                 steps, ways=ways, first_order=True, record=True)
        return [self.loss.metrics(out, batch["query_y"], ways) for out in outputs]

    def predict(self, theta, extra, support_x, support_y, query_x, *, steps=None, ways=None):
        steps = self.eval_steps if steps is None else steps
        fast, sx, qx, start, _ = self.adapt(theta, extra, support_x, support_y, query_x, steps, ways=ways,
                                            first_order=True)
        outputs = self._query(fast, sx, qx, start, max(steps - 1, 0))
        return self.loss.logits(outputs, ways) if self.loss.kind == "classification" else outputs
