"""Prototypical networks (Snell et al. 2017): classify queries by the nearest class prototype.

The model is an embedding (no output layer). A class prototype is the mean embedding of
its support examples; a query's logits are minus its squared Euclidean distances to the
prototypes. There is no inner loop, so any number of ways works at evaluation time.
"""

from polytask.spec.registry import ALGORITHMS
from polytask.compiler.meta.algorithms.base import Algorithm, MetaAlgorithm


class ProtoNet(MetaAlgorithm):
    metric_based = True

    def __init__(self, model, structure, loss, description):  # a class family: check's PT212
        super().__init__(model, structure, loss, description)
        self.eval_steps = 0

    def logits(self, theta, support_x, support_y, query_x, ways):
        from polytask.compiler.meta.functional import tile_params

        import tensorflow as tf

        tasks = support_x.shape[0] if support_x.shape[0] is not None else tf.shape(support_x)[0]
        params = tile_params(theta, tasks)
        if self.transductive or not self.model.has_batch_norm:
            support = self.model(params, support_x)
            query = self.model(params, query_x)
        else:
            count = support_x.shape[1] if support_x.shape[1] is not None else tf.shape(support_x)[1]
            joint = self.model(params, tf.concat([support_x, query_x], 1), stats_count=count)
            support, query = joint[:, :count], joint[:, count:]
        support = tf.reshape(support, [tasks, tf.shape(support)[1], -1])
        query = tf.reshape(query, [tasks, tf.shape(query)[1], -1])
        one_hot = tf.one_hot(support_y, ways, dtype=support.dtype)  # [T, S, W]
        counts = tf.reduce_sum(one_hot, axis=1)[..., None]  # [T, W, 1]
        prototypes = tf.einsum("tsw,tsd->twd", one_hot, support) / tf.maximum(counts, 1.0)
        distances = (tf.reduce_sum(tf.square(query), -1)[..., None]
                     - 2.0 * tf.einsum("tqd,twd->tqw", query, prototypes)
                     + tf.reduce_sum(tf.square(prototypes), -1)[:, None, :])
        return -distances

    def _ways(self, ways):
        return ways or self.description.ways

    def meta_loss(self, theta, extra, batch, *, ways=None):
        ways = self._ways(ways)
        logits = self.logits(theta, batch["support_x"], batch["support_y"], batch["query_x"], ways)
        return self.loss.metrics(logits, batch["query_y"], ways)

    def evaluate(self, theta, extra, batch, *, steps=None, ways=None):
        return [self.meta_loss(theta, extra, batch, ways=ways)]

    def predict(self, theta, extra, support_x, support_y, query_x, *, steps=None, ways=None):
        return self.logits(theta, support_x, support_y, query_x, self._ways(ways))


@ALGORITHMS.register
class ProtoNetAlgorithm(Algorithm):
    """Prototypical networks (Snell et al. 2017): nearest class prototype in an embedding."""

    name = "protonet"
    implementation = ProtoNet
