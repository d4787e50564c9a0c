"""NumPy references for gls, stch, famo, db_mtl, excess_mtl, fairgrad, moco, sdmgrad and modo.

Written from the papers' equations, independently of the TensorFlow transforms: loss-only
methods differentiate their scalarisation S(L) numerically (central differences in float64)
and combine the task gradients by the chain rule, d = sum_i dS/dL_i g_i; gradient methods
follow the papers' algorithms step by step; FairGrad's system is solved with SciPy's
least_squares (as the authors do) and simplex projections by bisection.

Each reference takes per-step task gradients G [T, P] (gradients of the task losses) and
losses L [T] and returns the combined shared update d [P] of every step.
"""
from __future__ import annotations

import numpy as np


def numeric_gradient(function, x, h=1e-6):
    x = np.asarray(x, np.float64)
    out = np.zeros_like(x)
    for i in range(len(x)):
        up, down = x.copy(), x.copy()
        up[i] += h * max(1.0, abs(x[i]))
        down[i] -= h * max(1.0, abs(x[i]))
        out[i] = (function(up) - function(down)) / (up[i] - down[i])
    return out


def simplex_projection(v, iterations=200):
    """argmin_{w in simplex} ||w - v||, by bisection on the threshold of max(v - theta, 0)."""
    v = np.asarray(v, np.float64)
    low, high = v.min() - 1.0, v.max()
    for _ in range(iterations):
        theta = 0.5 * (low + high)
        if np.maximum(v - theta, 0.0).sum() > 1.0:
            low = theta
        else:
            high = theta
    return np.maximum(v - 0.5 * (low + high), 0.0)


# ---------------------------------------------------------------- loss-only methods


def gls(steps):
    """Chennupati et al. 2019, eq. 3: L = (prod_i L_i)^(1/T)."""
    out = []
    for g, losses in steps:
        s = lambda l: np.prod(l) ** (1.0 / len(l))  # noqa: E731
        out.append(numeric_gradient(s, losses) @ g)
    return out


def stch(steps, mu, warmup_steps, period):
    """Lin et al. 2024 (MTL form): sum log L during warm-up, then T mu logsumexp(log(L / nadir) / mu)."""
    out, history = [], []
    nadir = None
    for k, (g, losses) in enumerate(steps):
        t = len(losses)
        if k < warmup_steps + period:
            s = lambda l: np.sum(np.log(l))  # noqa: E731
            if k >= warmup_steps:
                history.append(np.array(losses, np.float64))
        else:
            nadir = np.mean(history, axis=0) if nadir is None else nadir
            s = lambda l: t * mu * np.log(np.sum(np.exp(np.log(l / nadir) / mu)))  # noqa: E731
        out.append(numeric_gradient(s, losses) @ g)
    return out


def famo(steps, losses_after, learning_rate, weight_decay, minimum=None):
    """Liu et al. 2023, Alg. 1 with the official code's Adam on the logits (L2 decay in the gradient)."""
    t = len(steps[0][1])
    minimum = np.zeros(t) if minimum is None else np.asarray(minimum, np.float64)
    xi = np.zeros(t)
    m, v = np.zeros(t), np.zeros(t)
    out = []
    softmax = lambda a: np.exp(a - a.max()) / np.exp(a - a.max()).sum()  # noqa: E731
    for k, ((g, losses), after) in enumerate(zip(steps, losses_after), start=1):
        z = softmax(xi)
        gap = np.asarray(losses, np.float64) - minimum + 1e-8
        c = np.sum(z / gap)  # held constant
        s = lambda l: np.sum(z * np.log(l - minimum + 1e-8)) / c  # noqa: E731
        out.append(numeric_gradient(s, losses) @ g)
        delta = np.log(gap) - np.log(np.asarray(after, np.float64) - minimum + 1e-8)
        grad = numeric_gradient(lambda a: softmax(a) @ delta, xi) + weight_decay * xi
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        xi = xi - learning_rate * (m / (1 - 0.9 ** k)) / (np.sqrt(v / (1 - 0.999 ** k)) + 1e-8)
    return out, xi


# ---------------------------------------------------------------- gradient methods


def db_mtl(steps, beta, beta_sigma):
    """Lin et al. 2023, Alg. 1: EMA of grad log L_i, each scaled to the largest EMA norm."""
    out, buffer = [], None
    for k, (g, losses) in enumerate(steps, start=1):
        log_grads = g / (np.asarray(losses)[:, None] + 1e-8)  # grad log L = grad L / L
        rate = beta / k ** beta_sigma
        buffer = np.zeros_like(log_grads) if buffer is None else buffer  # h_0 = 0
        buffer = rate * buffer + (1 - rate) * log_grads
        norms = np.linalg.norm(buffer, axis=1)
        out.append(((norms.max() / (norms + 1e-8))[:, None] * buffer).sum(0))
    return out


def excess_mtl(steps, step_size):
    """He et al. 2024, Alg. 1: excess risk g^T diag(1/sqrt(sum g^2)) g, normalised by the first; exponentiated weights."""
    t = len(steps[0][1])
    weights, squares, initial = np.ones(t), None, None
    out = []
    for g, _ in steps:
        squares = g * g if squares is None else squares + g * g
        excess = np.array([g[i] @ (g[i] / np.sqrt(squares[i] + 1e-7)) for i in range(t)])
        if initial is None:
            initial = excess
        else:
            weights = weights * np.exp(step_size * excess / initial)
            weights = weights / weights.sum() * t
        out.append(weights @ g)
    return out


def fairgrad(steps, alpha):
    """Ban & Ji 2024, eq. 7: G G^T w = w^(-1/alpha), w > 0, solved with SciPy as the authors do."""
    from scipy.optimize import least_squares

    out = []
    for g, _ in steps:
        a = g @ g.T
        t = len(a)
        result = least_squares(lambda w: a @ w - np.power(1.0 / w, 1.0 / alpha), np.ones(t) / t,
                               bounds=(0, np.inf), xtol=1e-15, ftol=1e-15, gtol=1e-15)
        out.append(result.x @ g)
    return out


def moco(steps, beta, beta_sigma, gamma, gamma_sigma, rho, normalize=True):
    """Fernando et al. 2023, Alg. 1 with the simplex projection of lambda."""
    t = len(steps[0][1])
    y, lam = None, np.ones(t) / t
    out = []
    for k, (g, losses) in enumerate(steps, start=1):
        h = g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-8) * np.asarray(losses)[:, None] if normalize else g
        y = np.zeros_like(h) if y is None else y
        y = y - beta / k ** beta_sigma * (y - h)
        lam = simplex_projection(lam - gamma / k ** gamma_sigma * (y @ y.T + rho * np.eye(t)) @ lam)
        out.append(lam @ y)
    return out, lam


def sdmgrad(steps, lamda, iterations, samples=None, learning_rate=5.0, momentum=0.5):
    """Xiao et al. 2023, Alg. 1: w from xi_1 xi_2^T, d from zeta (samples[k] = (zeta, xi_1, xi_2); default: g thrice)."""
    t = len(steps[0][1])
    w = np.ones(t) / t
    out = []
    for k, (g, _) in enumerate(steps):
        zeta, xi_1, xi_2 = samples[k] if samples is not None else (g, g, g)
        g = zeta
        gram = xi_1 @ xi_2.T
        scale = np.mean(np.sqrt(np.maximum(np.diag(gram), 0)))
        a = gram / (scale ** 2 + 1e-8)
        velocity = np.zeros(t)
        for _ in range(iterations):
            grad = a @ w + lamda * a @ (np.ones(t) / t)  # d/dw [0.5 w^T A w + lamda w^T A 1/T]
            velocity = momentum * velocity + grad
            w = simplex_projection(w - learning_rate * velocity)
        out.append((w @ g + lamda * g.mean(0)) / (1 + lamda))
    return out


def modo(steps, gamma, rho, samples=None):
    """Chen et al. 2023, Alg. 1: lambda from G_1 G_2^T, d from G_3 (samples[k] = (G_1, G_2, G_3); default: g thrice)."""
    t = len(steps[0][1])
    lam = np.ones(t) / t
    out = []
    for k, (g, _) in enumerate(steps):
        g1, g2, g3 = samples[k] if samples is not None else (g, g, g)
        lam = simplex_projection(lam - gamma * (g1 @ (g2.T @ lam) + rho * lam))
        out.append(lam @ g3)
    return out


def auto_lambda(theta, train, validation, lam, alpha, primary, learning_rate, steps):
    """Liu et al. 2022, eq. 3-5: lambda descends L_val(theta - alpha grad sum_i lambda_i L_i(train; theta)).

    Quadratic task losses L_i = 0.5 ||A_i theta - b_i||^2 (train: (A, b) pairs, validation
    likewise); the hypergradient is the exact derivative of the unrolled validation loss,
    taken numerically over lambda (the paper's finite-difference Hessian approximates it).
    theta stays fixed; lambda takes `steps` Adam steps. Returns (first hypergradient, lambda).
    """
    def grad(pairs, th):
        return [a.T @ (a @ th - b) for a, b in pairs]

    def unrolled(l):
        virtual = theta - alpha * sum(w * g for w, g in zip(l, grad(train, theta)))
        return sum(p * 0.5 * np.sum((a @ virtual - b) ** 2) for p, (a, b) in zip(primary, validation))

    lam = np.asarray(lam, np.float64)
    m, v, first = np.zeros_like(lam), np.zeros_like(lam), None
    for k in range(1, steps + 1):
        g = numeric_gradient(unrolled, lam)
        first = g if first is None else first
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        lam = lam - learning_rate * (m / (1 - 0.9 ** k)) / (np.sqrt(v / (1 - 0.999 ** k)) + 1e-8)
    return first, lam
