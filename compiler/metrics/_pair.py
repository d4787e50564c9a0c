"""Shared by the regression metrics: labels and predictions as matching [n, d] arrays."""


def pair(metric, labels, predictions):
    prediction = metric.need(predictions, "prediction", metric.name).reshape(len(labels), -1)
    return labels[:, : prediction.shape[1]], prediction
