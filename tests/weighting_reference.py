"""NumPy references for the gradient-based weightings, written from the papers' equations.

Each function takes per-task gradients J [T, P] (rows g_i, float64) and returns the
combined shared update d [P] the paper prescribes. Small optimisation problems are solved
with SciPy's general-purpose solvers on the paper's own formulation (not with the
TensorFlow solvers' algorithms), so a test comparing the two checks the solver too.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize


def _simplex_minimize(objective, count: int) -> np.ndarray:
    start = np.full(count, 1.0 / count)
    result = minimize(objective, start, method="SLSQP", bounds=[(0.0, 1.0)] * count,
                      constraints=[{"type": "eq", "fun": lambda a: np.sum(a) - 1.0}],
                      options={"ftol": 1e-15, "maxiter": 1000})
    return result.x


def mgda(J, losses=None, normalization="none"):
    """Sener & Koltun 2018 eq. 3: the min-norm point of conv{g_i / n_i}."""
    J = np.asarray(J, np.float64)
    norms = np.linalg.norm(J, axis=1)
    n = {"none": np.ones(len(J)), "l2": norms, "loss": np.asarray(losses, np.float64),
         "loss+": np.asarray(losses, np.float64) * norms}[normalization]
    Jn = J / n[:, None]
    a = _simplex_minimize(lambda a: float(np.sum((a @ Jn) ** 2)), len(J))
    return a @ Jn


def cagrad(J, c=0.5, rescale=1):
    """Liu et al. 2021 eq. 4 + Alg. 1: d = g0 + sqrt(phi)/||g_w|| g_w, w minimising g_w.g0 + sqrt(phi)||g_w||."""
    J = np.asarray(J, np.float64)
    g0 = J.mean(axis=0)
    root_phi = c * np.linalg.norm(g0)
    w = _simplex_minimize(lambda w: float((w @ J) @ g0 + root_phi * np.linalg.norm(w @ J)), len(J))
    gw = w @ J
    d = g0 + root_phi / np.linalg.norm(gw) * gw
    return d / {0: 1.0, 1: 1.0 + c ** 2, 2: 1.0 + c}[rescale]


def nash_mtl_weights(J):
    """Navon et al. 2022: a > 0 with (J J^T) a = 1/a, by a generic root finder in log-space."""
    from scipy.optimize import least_squares

    J = np.asarray(J, np.float64)
    G = J @ J.T
    result = least_squares(lambda z: G @ np.exp(z) - np.exp(-z), np.zeros(len(J)), xtol=1e-15, ftol=1e-15, gtol=1e-15)
    return np.exp(result.x)


def nash_mtl(J):
    return nash_mtl_weights(J) @ np.asarray(J, np.float64)


def imtl_g(J):
    """Liu et al. 2021 eq. 6: a_{2:T} = g_1 U^T (D U^T)^{-1}, a_1 = 1 - sum, d = sum a_i g_i."""
    J = np.asarray(J, np.float64)
    u = J / np.linalg.norm(J, axis=1, keepdims=True)
    D = J[0] - J[1:]
    U = u[0] - u[1:]
    rest = J[0] @ U.T @ np.linalg.inv(D @ U.T)
    a = np.concatenate([[1.0 - rest.sum()], rest])
    return a @ J


def aligned_mtl(J):
    """Senushkin et al. 2023 Alg. 1: J_hat = sigma_min U V^T from the SVD J^T = U S V^T; d = J_hat^T 1."""
    J = np.asarray(J, np.float64)
    U, S, Vt = np.linalg.svd(J.T, full_matrices=False)  # J^T [P, T] = U diag(S) Vt
    keep = S > S.max() * len(J) * np.finfo(np.float32).eps
    aligned = S[keep].min() * U[:, keep] @ Vt[keep]  # [P, T]: the aligned task gradients as columns
    return aligned @ np.ones(len(J))


def upgrad(J, norm_eps=1e-4, reg_eps=1e-4):
    """Quinton & Rey 2024: mean over i of the projection of g_i / T onto the dual cone {x : J x >= 0}.

    Solved as the primal projection min ||x - g_i/T||^2 s.t. J x >= 0 (eq. 3) over x in R^P,
    not through Prop. 1's weight problem; the Gramian normalisation and ridge of TorchJD
    are applied by working with a Jacobian whose Gramian is the regularised normalised one.
    """
    J = np.asarray(J, np.float64)
    T = len(J)
    G = J @ J.T
    trace = np.trace(G)
    Gn = np.zeros_like(G) if trace < norm_eps else G / trace
    Gr = Gn + reg_eps * np.eye(T)
    # A T x T "Jacobian" with Gramian Gr (Cholesky): projections there give the weights v.
    L = np.linalg.cholesky(Gr)
    weights = np.zeros(T)
    for i in range(T):
        target = L.T @ (np.eye(T)[i] / T)  # the i-th preference-weighted gradient, in L's coordinates
        result = minimize(lambda x: float(np.sum((x - target) ** 2)), target, method="SLSQP",
                          constraints=[{"type": "ineq", "fun": lambda x: L @ x}], options={"ftol": 1e-15, "maxiter": 1000})
        weights += np.linalg.solve(L.T, result.x)  # x = L^T v
    return weights @ J


def graddrop(J_rep, h, uniform, leak=0.0):
    """Chen et al. 2020 eq. 1-3 on representation gradients J_rep [T, B, d] with activations h [B, d]."""
    S = np.sum(J_rep * np.sign(h)[None], axis=1)
    P = 0.5 * (1.0 + S.sum(0) / (np.abs(S).sum(0) + 1e-7))
    M = ((P > uniform) & (S > 0)) | ((P < uniform) & (S < 0))
    return np.sum(J_rep * (leak + (1.0 - leak) * M)[:, None, :], axis=0)


def gradvac(J, orders, targets, beta=0.01, groups=None):
    """Wang et al. 2021 Alg. 1 for one step: returns (d, new targets [T, T, K]).

    orders[i]: the order in which task i visits the tasks (itself skipped); groups: column
    -> group id (None: one group).
    """
    J = np.asarray(J, np.float64)
    T, P = J.shape
    groups = np.zeros(P, int) if groups is None else np.asarray(groups)
    targets = np.array(targets, np.float64)
    out = []
    for i in range(T):
        g = J[i].copy()
        for j in orders[i]:
            if j == i:
                continue
            for k in range(targets.shape[2]):
                cols = groups == k
                gi, gj = g[cols], J[j, cols]
                phi = gi @ gj / (np.linalg.norm(gi) * np.linalg.norm(gj) + 1e-8)
                t = targets[i, j, k]
                if phi < t:
                    w = np.linalg.norm(gi) * (t * np.sqrt(1 - phi ** 2) - phi * np.sqrt(1 - t ** 2)) / (
                        np.linalg.norm(gj) * np.sqrt(1 - t ** 2) + 1e-8)
                    g[cols] = gi + w * gj
                targets[i, j, k] = (1 - beta) * t + beta * phi
        out.append(g)
    return np.sum(out, axis=0), targets


def pcgrad(J, orders):
    """Yu et al. 2020 Alg. 1: for each i, visit j in orders[i]; if g_i'.g_j < 0, g_i' -= (g_i'.g_j/||g_j||^2) g_j."""
    J = np.asarray(J, np.float64)
    out = []
    for i in range(len(J)):
        g = J[i].copy()
        for j in orders[i]:
            if j != i and g @ J[j] < 0:
                g = g - (g @ J[j]) / (J[j] @ J[j]) * J[j]
        out.append(g)
    return np.sum(out, axis=0)
