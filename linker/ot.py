r"""Optimal-transport joint disambiguation of textual and visual mentions (M3EL §4.3).

One document gives two small graphs over a shared entity vocabulary of size :math:`E`
(the union of all candidates of the document):

- text: :math:`n` mentions, candidate distributions :math:`\mathbf{P}_t \in \Delta_E^n`
  (rows sum to 1) and an intra-text structure :math:`\mathbf{C}_t \in [0, 1]^{n \times n}`;
- image: :math:`m` faces, :math:`\mathbf{P}_v \in \Delta_E^m` and :math:`\mathbf{C}_v \in [0, 1]^{m \times m}`.

The paper aligns the two graphs with an entropic Gromov-Wasserstein plan :math:`\mathbf{T}`
(eqs. 9-10) and then adds plan-weighted evidence from the other modality to each mention's
candidate scores. Here the plan is a *fused* GW plan (Vayer et al., 2019): the structure term of
eq. 9 plus a linear cross-modal term :math:`\mathbf{M}` saying how much a mention and a face agree
on their candidates. Because most faces have no textual mention and vice versa, a *partial*
variant transports only a fraction of the mass, so unmatched mentions are not forced onto a face.

Everything here is a pure function: numpy arrays in, numpy arrays out, no I/O, no globals.
Malformed arrays or parameters are programming errors and raise `ValueError` (as in numpy and
POT); a solver that stops at its iteration limit warns with a `ConvergenceWarning`, and
`joint_plan(..., log=True)` returns its diagnostics.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "ConvergenceWarning",
    "cross_cost",
    "structure_from_embeddings",
    "structure_from_distributions",
    "joint_plan",
    "rescore",
    "joint_rescore",
    "logsumexp",
    "normalize_rows",
]

_TINY = 1e-12
_INNER_ITER = 500  # Sinkhorn iterations per projected-gradient step (warm-started)
_INNER_TOL = 1e-9


class ConvergenceWarning(RuntimeWarning):
    """A solver stopped at its iteration limit before meeting its tolerance."""


def logsumexp(X: np.ndarray, axis: int | None = None, keepdims: bool = True) -> np.ndarray:
    r""":math:`\log \sum \exp X` along `axis` (all entries when None), computed as
    :math:`m + \log \sum \exp(X - m)` with :math:`m = \max X`; stable for :math:`-\infty` entries."""
    mx = np.max(X, axis=axis, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(divide="ignore"):
        out = mx + np.log(np.sum(np.exp(X - mx), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def normalize_rows(P: np.ndarray) -> np.ndarray:
    """Each row divided by its sum; rows with no mass (sum <= 1e-12) become zeros."""
    s = P.sum(axis=1, keepdims=True)
    return np.where(s > _TINY, P / np.maximum(s, _TINY), 0.0)


def _as_matrix(name: str, X: np.ndarray, ndim: int = 2) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def _as_distributions(name: str, P: np.ndarray) -> np.ndarray:
    P = _as_matrix(name, P)
    if np.any(P < 0):
        raise ValueError(f"{name} has negative entries (min {P.min():.3g}); rows must be distributions")
    return P


def cross_cost(P_t: np.ndarray, P_v: np.ndarray) -> np.ndarray:
    r"""Cross-modal cost: cosine distance between candidate distributions.

    .. math::
        \mathbf{M}_{ij} = 1 - \frac{\langle \mathbf{P}_t[i], \mathbf{P}_v[j] \rangle}
                                   {\|\mathbf{P}_t[i]\|_2 \, \|\mathbf{P}_v[j]\|_2}

    Entries lie in :math:`[0, 1]` because distributions are non-negative: 0 when mention *i* and
    face *j* put their mass on the same entities in the same proportions, 1 when they share no
    candidate. A row with no mass (no candidate) costs 1 against everything.

    Parameters
    ----------
    P_t : array-like, shape (n, E)
        Candidate distributions of the textual mentions.
    P_v : array-like, shape (m, E)
        Candidate distributions of the faces over the same vocabulary.

    Returns
    -------
    M : ndarray, shape (n, m)
    """
    P_t = _as_distributions("P_t", P_t)
    P_v = _as_distributions("P_v", P_v)
    if P_t.shape[1] != P_v.shape[1]:
        raise ValueError(
            f"P_t and P_v must share the entity vocabulary: {P_t.shape[1]} != {P_v.shape[1]} columns"
        )
    nt = np.linalg.norm(P_t, axis=1, keepdims=True)
    nv = np.linalg.norm(P_v, axis=1, keepdims=True)
    sim = (P_t @ P_v.T) / np.maximum(nt * nv.T, _TINY)
    return np.clip(1.0 - sim, 0.0, 1.0)


def structure_from_embeddings(X: np.ndarray) -> np.ndarray:
    r"""Intra-modal structure: cosine distances between embeddings, scaled to :math:`[0, 1]`.

    .. math::
        \mathbf{D}_{ik} = 1 - \frac{\langle x_i, x_k \rangle}{\|x_i\|\,\|x_k\|}, \qquad
        \mathbf{C} = \mathbf{D} / \max_{ik} \mathbf{D}_{ik}

    Dividing by the largest distance makes the two modalities comparable in the GW term
    (text-context embeddings and face embeddings have very different distance ranges); the
    structure is then scale-free: only relative distances matter. All-equal inputs give zeros.

    Parameters
    ----------
    X : array-like, shape (n, d)
        One embedding per mention (e.g. the context embedding) or per face.

    Returns
    -------
    C : ndarray, shape (n, n), symmetric, zero diagonal, values in [0, 1]
    """
    X = _as_matrix("X", X)
    U = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), _TINY)
    D = np.clip(1.0 - U @ U.T, 0.0, 2.0)
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    top = D.max() if D.size else 0.0
    return D / top if top > _TINY else D


def structure_from_distributions(P: np.ndarray) -> np.ndarray:
    r"""Intra-modal structure from candidate distributions: total-variation distance.

    .. math::
        \mathbf{C}_{ik} = \tfrac12 \|\mathbf{P}[i] - \mathbf{P}[k]\|_1 \in [0, 1]

    Useful when no embedding is at hand: two mentions are close when they hesitate between the
    same entities.

    Parameters
    ----------
    P : array-like, shape (n, E)

    Returns
    -------
    C : ndarray, shape (n, n)
    """
    P = _as_distributions("P", P)
    return 0.5 * np.abs(P[:, None, :] - P[None, :, :]).sum(axis=-1)


def _weights(name: str, w: np.ndarray | None, size: int) -> np.ndarray:
    if w is None:
        return np.full(size, 1.0 / size)
    w = _as_matrix(name, w, ndim=1)
    if w.shape[0] != size:
        raise ValueError(f"{name} has {w.shape[0]} weights for {size} nodes")
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"{name} must be non-negative with a positive sum, got {w.tolist()}")
    return w / w.sum()


def _fgw_gradient(C_t: np.ndarray, C_v: np.ndarray, M: np.ndarray, T: np.ndarray, alpha: float) -> np.ndarray:
    r"""Gradient of the fused GW objective (square loss) for a plan with any marginals.

    :math:`\nabla = (1-\alpha)\mathbf{M} + 2\alpha\,[(\mathbf{C}_t^2 p)\mathbf{1}^\top
    + \mathbf{1}(\mathbf{C}_v^2 q)^\top - 2\,\mathbf{C}_t \mathbf{T} \mathbf{C}_v^\top]`,
    :math:`p = \mathbf{T}\mathbf{1}`, :math:`q = \mathbf{T}^\top\mathbf{1}`.
    """
    p, q = T.sum(axis=1), T.sum(axis=0)
    const = np.outer((C_t**2) @ p, np.ones_like(q)) + np.outer(np.ones_like(p), (C_v**2) @ q)
    return (1.0 - alpha) * M + 2.0 * alpha * (const - 2.0 * C_t @ T @ C_v.T)


def _sinkhorn_log(a: np.ndarray, b: np.ndarray, G: np.ndarray, eps: float, n_iter: int, tol: float,
                  g: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    r"""Balanced entropic OT in the log domain: :math:`\arg\min_{T \in \Pi(a,b)} \langle G, T\rangle
    + \varepsilon \sum T \log T` (as `ot.sinkhorn(..., method="sinkhorn_log")`).

    Returns the plan, the column potential `g`, which warm-starts the next call, and the log
    `{"n_iter", "err"}` (`err`: row-marginal error at the last check, every 10 iterations).
    """
    la, lb, S = np.log(a)[:, None], np.log(b)[None, :], -G / eps
    g = np.zeros_like(lb) if g is None else g
    err = np.inf
    for it in range(n_iter):
        f = la - logsumexp(S + g, axis=1)
        g = lb - logsumexp(S + f, axis=0)
        if it % 10 == 0:
            err = float(np.abs(np.exp(logsumexp(S + f + g, axis=1)) - np.exp(la)).max())
            if err < tol:
                break
    return np.exp(S + f + g), g, {"n_iter": it + 1, "err": err}


def _round_to_marginals(T: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Nearest-enough feasible plan: round `T` onto :math:`\Pi(a, b)` (Altschuler, Weed and
    Rigollet 2017, Alg. 2). Changes `T` by at most twice its marginal error in :math:`\ell_1`.

    Needed because Sinkhorn converges only sublinearly on the degenerate problems small
    documents produce (e.g. 6 mentions, 2 faces: the optimum splits the rows exactly 3-3).
    """
    T = T * np.minimum(a / np.maximum(T.sum(axis=1), _TINY), 1.0)[:, None]
    T = T * np.minimum(b / np.maximum(T.sum(axis=0), _TINY), 1.0)[None, :]
    err_a = a - T.sum(axis=1)
    err_b = b - T.sum(axis=0)
    total = err_b.sum()
    return T + np.outer(err_a, err_b) / total if total > 0 else T


def _partial_sinkhorn_log(a: np.ndarray, b: np.ndarray, G: np.ndarray, eps: float, mass: float,
                          n_iter: int, tol: float) -> tuple[np.ndarray, dict]:
    r"""Entropic partial OT in the log domain: :math:`\arg\min \langle G, T\rangle
    + \varepsilon \sum T \log T` s.t. :math:`T1 \le a`, :math:`T^\top 1 \le b`,
    :math:`1^\top T 1 = s`, by Dykstra's iterated Bregman projections (Benamou et al. 2015),
    as `ot.partial.entropic_partial_wasserstein`.

    Returns the plan and the log `{"n_iter", "err"}` (`err`: the largest change of a plan entry
    in one iteration, checked every 10).
    """
    la, lb, ls = np.log(a)[:, None], np.log(b)[None, :], np.log(mass)
    L = -G / eps
    L = L + (ls - logsumexp(L, axis=None))
    q1 = np.zeros_like(L)
    q2 = np.zeros_like(L)
    q3 = np.zeros_like(L)
    err = np.inf
    for it in range(n_iter):
        prev = L
        L0 = L + q1
        L1 = L0 + np.minimum(la - logsumexp(L0, axis=1), 0.0)
        q1 = q1 + L - L1
        L1q = L1 + q2
        L2 = L1q + np.minimum(lb - logsumexp(L1q, axis=0), 0.0)
        q2 = q2 + L1 - L2
        L2q = L2 + q3
        L = L2q + (ls - logsumexp(L2q, axis=None))
        q3 = q3 + L2 - L
        if it % 10 == 0:
            err = float(np.abs(np.exp(L) - np.exp(prev)).max())
            if err < tol:
                break
    return np.exp(L), {"n_iter": it + 1, "err": err}


def _fgw_pgd(
    C_t: np.ndarray, C_v: np.ndarray, M: np.ndarray, a: np.ndarray, b: np.ndarray,
    alpha: float, epsilon: float, mass: float, max_iter: int, tol: float,
) -> tuple[np.ndarray, dict]:
    """Projected mirror descent (Peyré et al. 2016): each step is an entropic OT problem on the
    linearised cost, balanced (Sinkhorn) for `mass == 1`, partial otherwise.

    This is the algorithm of POT's `entropic_fused_gromov_wasserstein(solver="PGD")` with the
    inner solvers written out in numpy, in the log domain: POT fixes `method="sinkhorn"`, which
    underflows for small `epsilon`, and its log-domain solvers cost ~0.5 ms a step in scipy
    overhead. POT 0.9.7's `entropic_partial_fused_gromov_wasserstein` adds the scalar
    `sum(G*M)` to the gradient instead of `M`, so its feature term has no effect. The tests
    check these solvers against POT's.

    Returns the plan and the log (see `joint_plan`).
    """
    T = np.outer(a, b) * mass
    g = None
    inner = []
    for it in range(max_iter):
        G = _fgw_gradient(C_t, C_v, M, T, alpha)
        G = G - G.min()  # a constant shift changes nothing at fixed mass
        if mass < 1.0:
            T_new, step = _partial_sinkhorn_log(a, b, G, epsilon, mass, n_iter=_INNER_ITER, tol=_INNER_TOL)
        else:
            T_new, g, step = _sinkhorn_log(a, b, G, epsilon, n_iter=_INNER_ITER, tol=_INNER_TOL, g=g)
        inner.append(step)
        err = float(np.abs(T_new - T).max())
        T = T_new
        if err < tol:
            break
    log = {"n_iter": it + 1, "err": err, "converged": err < tol,
           "inner_iter": sum(s["n_iter"] for s in inner),
           "inner_unconverged": sum(s["err"] >= _INNER_TOL for s in inner)}
    return (T if mass < 1.0 else _round_to_marginals(T, a, b)), log


def joint_plan(
    C_t: np.ndarray,
    C_v: np.ndarray,
    M: np.ndarray,
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
    alpha: float = 0.5,
    epsilon: float = 0.02,
    mass: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-6,
    log: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict]:
    r"""Entropic (partial) fused Gromov-Wasserstein plan between text mentions and faces.

    Solves

    .. math::
        \mathbf{T}^* = \mathop{\arg\min}_{\mathbf{T} \in \Pi_s(a, b)}
            (1-\alpha) \sum_{i,j} \mathbf{M}_{ij} \mathbf{T}_{ij}
            + \alpha \sum_{i,k,j,l} (\mathbf{C}_t[i,k] - \mathbf{C}_v[j,l])^2
              \mathbf{T}_{ij} \mathbf{T}_{kl}
            + \varepsilon \sum_{ij} \mathbf{T}_{ij} \log \mathbf{T}_{ij}

    with :math:`s` = `mass` and

    - :math:`s = 1` (balanced, the paper's eqs. 9-10):
      :math:`\Pi_1 = \{\mathbf{T} \ge 0, \mathbf{T}\mathbf{1} = a, \mathbf{T}^\top\mathbf{1} = b\}`,
      solved by projected mirror descent with a log-domain Sinkhorn step (POT's
      `entropic_fused_gromov_wasserstein` algorithm);
    - :math:`0 < s < 1` (partial, Chapel et al. 2020):
      :math:`\Pi_s = \{\mathbf{T} \ge 0, \mathbf{T}\mathbf{1} \le a, \mathbf{T}^\top\mathbf{1} \le b,
      \mathbf{1}^\top\mathbf{T}\mathbf{1} = s\}`: only the cheapest fraction :math:`s` of the mass
      moves, so a face with no textual mention (or a mention with no face) can stay unmatched
      instead of being forced onto the least-bad partner; the step is POT's
      `ot.partial.entropic_partial_wasserstein`.

    :math:`\alpha = 0` is plain entropic OT on :math:`\mathbf{M}`; :math:`\alpha = 1` is pure GW.
    The costs are expected in :math:`[0, 1]` (see :func:`cross_cost`, :func:`structure_from_embeddings`)
    so that `epsilon` has the same meaning for every document.

    Parameters
    ----------
    C_t : array-like, shape (n, n)
        Intra-text structure.
    C_v : array-like, shape (m, m)
        Intra-image structure.
    M : array-like, shape (n, m)
        Cross-modal cost.
    a, b : array-like, shape (n,) and (m,), optional
        Node weights; uniform by default, renormalised to sum to 1.
    alpha : float in [0, 1]
        Weight of the structure (GW) term against the cross cost.
    epsilon : float > 0
        Entropic regularisation :math:`\varepsilon` (the paper's :math:`\beta`).
    mass : float in (0, 1]
        Fraction :math:`s` of the mass to transport.
    max_iter, tol :
        Outer (projected gradient) iterations; stop when no plan entry moves more than `tol`.
        Stopping at `max_iter` instead warns (`ConvergenceWarning`).
    log : bool
        Also return the solver's diagnostics (as POT's `log=True`).

    Returns
    -------
    T : ndarray, shape (n, m)
        The plan; `(0, m)` or `(n, 0)` zeros when a side has no node.
    log : dict, only if `log`
        `n_iter` (outer iterations), `err` (the largest change of a plan entry in the last one),
        `converged` (`err < tol`), `inner_iter` (entropic OT iterations, all steps together) and
        `inner_unconverged` (steps whose entropic OT stopped at its limit, 500 iterations).
    """
    C_t = _as_matrix("C_t", C_t)
    C_v = _as_matrix("C_v", C_v)
    M = _as_matrix("M", M)
    n, m = C_t.shape[0], C_v.shape[0]
    if C_t.shape != (n, n) or C_v.shape != (m, m):
        raise ValueError(f"C_t and C_v must be square, got {C_t.shape} and {C_v.shape}")
    if M.shape != (n, m):
        raise ValueError(f"M must have shape (n, m) = {(n, m)}, got {M.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if not epsilon > 0.0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if not 0.0 < mass <= 1.0:
        raise ValueError(f"mass must lie in (0, 1], got {mass}")
    if n == 0 or m == 0:
        empty = np.zeros((n, m))
        return (empty, {"n_iter": 0, "err": 0.0, "converged": True, "inner_iter": 0, "inner_unconverged": 0}
                ) if log else empty
    T, diagnostics = _fgw_pgd(C_t, C_v, M, _weights("a", a, n), _weights("b", b, m),
                              alpha, epsilon, mass, max_iter, tol)
    if not diagnostics["converged"]:
        warnings.warn(f"joint_plan stopped at max_iter={max_iter} with a last plan change of "
                      f"{diagnostics['err']:.3g} > tol={tol:g}: increase max_iter or epsilon",
                      ConvergenceWarning, stacklevel=2)
    return (T, diagnostics) if log else T


def _propagate(P_own: np.ndarray, P_other: np.ndarray, T: np.ndarray, w: np.ndarray,
               weight: float, keep_support: bool) -> np.ndarray:
    sent = T.sum(axis=1)
    frac = np.clip(sent / np.maximum(w, _TINY), 0.0, 1.0)  # matched fraction of each node
    borrowed = (T / np.maximum(sent, _TINY)[:, None]) @ P_other  # plan-weighted evidence
    if keep_support:
        borrowed = borrowed * (P_own > 0)
        bsum = borrowed.sum(axis=1, keepdims=True)
        borrowed = np.where(bsum > _TINY, borrowed / np.maximum(bsum, _TINY), P_own)
    mix = (1.0 - weight * frac)[:, None] * P_own + (weight * frac)[:, None] * borrowed
    return normalize_rows(mix)


def rescore(
    P_t: np.ndarray,
    P_v: np.ndarray,
    T: np.ndarray,
    weight: float = 0.3,
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
    keep_support: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Propagate candidate evidence across the plan (the paper's last step of §4.3).

    For text mention :math:`i` with matched fraction
    :math:`r_i = \min(1, \sum_j \mathbf{T}_{ij} / a_i)`:

    .. math::
        \mathbf{P}_t'[i] \propto (1 - w\,r_i)\, \mathbf{P}_t[i]
            + w\, r_i \sum_j \frac{\mathbf{T}_{ij}}{\sum_{j'} \mathbf{T}_{ij'}} \mathbf{P}_v[j]

    i.e. :math:`(1-w)\mathbf{P}_t[i] + w\,[\sum_j (\mathbf{T}_{ij}/a_i)\mathbf{P}_v[j]
    + (1-r_i)\mathbf{P}_t[i]]`: the untransported part of a node keeps its own evidence, so a
    node with negligible mass (partial plans) keeps its own distribution. Faces are rescored
    symmetrically with :math:`\mathbf{T}^\top` and `b`. With `keep_support` the borrowed evidence
    is restricted to the node's own candidates (the joint step reweights candidates, it never
    invents one), and rows with no candidate stay zero.

    With `weight` :math:`w < 1/2` a confident mention cannot be flipped by a single face that is
    confident in another candidate, while a 50/50 mention follows the face.

    Parameters
    ----------
    P_t : array-like, shape (n, E)
    P_v : array-like, shape (m, E)
    T : array-like, shape (n, m)
        A plan from :func:`joint_plan`.
    weight : float in [0, 1]
        :math:`w`, how much the other modality counts.
    a, b : array-like, optional
        The weights the plan was computed with (uniform by default).
    keep_support : bool
        Restrict borrowed evidence to each node's own candidates.

    Returns
    -------
    (P_t', P_v') : ndarrays of shapes (n, E) and (m, E); non-empty rows sum to 1.
    """
    P_t = _as_distributions("P_t", P_t)
    P_v = _as_distributions("P_v", P_v)
    T = _as_matrix("T", T)
    n, m = P_t.shape[0], P_v.shape[0]
    if P_t.shape[1] != P_v.shape[1]:
        raise ValueError(
            f"P_t and P_v must share the entity vocabulary: {P_t.shape[1]} != {P_v.shape[1]} columns"
        )
    if T.shape != (n, m):
        raise ValueError(f"T must have shape (n, m) = {(n, m)}, got {T.shape}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must lie in [0, 1], got {weight}")

    P_t, P_v = normalize_rows(P_t), normalize_rows(P_v)
    if n == 0 or m == 0:
        return P_t, P_v
    a = _weights("a", a, n)
    b = _weights("b", b, m)
    return (
        _propagate(P_t, P_v, T, a, weight, keep_support),
        _propagate(P_v, P_t, T.T, b, weight, keep_support),
    )


def joint_rescore(
    P_t: np.ndarray,
    P_v: np.ndarray,
    C_t: np.ndarray | None = None,
    C_v: np.ndarray | None = None,
    *,
    alpha: float = 0.5,
    epsilon: float = 0.02,
    mass: float = 1.0,
    weight: float = 0.3,
    keep_support: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""One document's joint step: :func:`cross_cost` → :func:`joint_plan` → :func:`rescore`.

    Missing structures default to :func:`structure_from_distributions` of each side.
    Uniform node weights. Returns :math:`(\mathbf{P}_t', \mathbf{P}_v', \mathbf{T})`.
    """
    P_t = _as_distributions("P_t", P_t)
    P_v = _as_distributions("P_v", P_v)
    C_t = structure_from_distributions(P_t) if C_t is None else C_t
    C_v = structure_from_distributions(P_v) if C_v is None else C_v
    T = joint_plan(C_t, C_v, cross_cost(P_t, P_v), alpha=alpha, epsilon=epsilon, mass=mass)
    P_t2, P_v2 = rescore(P_t, P_v, T, weight=weight, keep_support=keep_support)
    return P_t2, P_v2, T
