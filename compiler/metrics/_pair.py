"""Shared by the regression metrics: labels and predictions as matching [n, d] arrays."""
from polytask.compiler.metrics import Metric


class RegressionMetric(Metric):
    measures = "regression"
    higher_is_better = False

    def pair(self, labels, predictions):
        prediction = self.need(predictions, "prediction", self.name).reshape(len(labels), -1)
        return labels[:, : prediction.shape[1]], prediction
