"""Invariants of the OT joint disambiguation: marginals, alignment recovery, rescoring."""
from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest

from linker.ot import (
    ConvergenceWarning,
    _partial_sinkhorn_log,
    _sinkhorn_log,
    cross_cost,
    joint_plan,
    joint_rescore,
    rescore,
    structure_from_distributions,
    structure_from_embeddings,
)


def _random_problem(rng: np.random.Generator, n: int, m: int, E: int = 8):
    P_t = rng.dirichlet(np.full(E, 0.5), size=n)
    P_v = rng.dirichlet(np.full(E, 0.5), size=m)
    C_t = structure_from_embeddings(rng.normal(size=(n, 6)))
    C_v = structure_from_embeddings(rng.normal(size=(m, 6)))
    return P_t, P_v, C_t, C_v, cross_cost(P_t, P_v)


def test_cross_cost_range_and_extremes():
    P_t = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    P_v = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    M = cross_cost(P_t, P_v)
    assert M.shape == (3, 2)
    assert M[0, 0] == pytest.approx(0.0)
    assert M[0, 1] == pytest.approx(1.0)  # no shared candidate
    assert M[1, 0] == pytest.approx(1 - 1 / np.sqrt(2))
    assert np.all(M[2] == 1.0)  # no candidate at all
    with pytest.raises(ValueError, match="vocabulary"):
        cross_cost(P_t, np.ones((2, 4)))
    with pytest.raises(ValueError, match="negative"):
        cross_cost(-P_t, P_v)


def test_structures_are_symmetric_in_unit_interval():
    rng = np.random.default_rng(1)
    for C in (structure_from_embeddings(rng.normal(size=(7, 5))),
              structure_from_distributions(rng.dirichlet(np.ones(4), size=7))):
        assert C.shape == (7, 7)
        np.testing.assert_allclose(C, C.T)
        np.testing.assert_allclose(np.diag(C), 0.0, atol=1e-12)
        assert C.min() >= 0.0 and C.max() <= 1.0 + 1e-12
    assert structure_from_embeddings(rng.normal(size=(7, 5))).max() == pytest.approx(1.0)
    np.testing.assert_allclose(structure_from_embeddings(np.ones((3, 2))), 0.0, atol=1e-12)


@pytest.mark.parametrize("n,m", [(1, 1), (3, 5), (6, 2), (9, 9)])
def test_balanced_plan_marginals_match_weights(n, m):
    rng = np.random.default_rng(n * 10 + m)
    _, _, C_t, C_v, M = _random_problem(rng, n, m)
    a = rng.dirichlet(np.ones(n))
    b = rng.dirichlet(np.ones(m))
    T = joint_plan(C_t, C_v, M, a=a, b=b)
    assert T.shape == (n, m) and np.all(T >= 0)
    np.testing.assert_allclose(T.sum(axis=1), a, atol=1e-5)
    np.testing.assert_allclose(T.sum(axis=0), b, atol=1e-5)
    # uniform default weights
    T = joint_plan(C_t, C_v, M)
    np.testing.assert_allclose(T.sum(axis=1), np.full(n, 1 / n), atol=1e-5)
    np.testing.assert_allclose(T.sum(axis=0), np.full(m, 1 / m), atol=1e-5)


@pytest.mark.parametrize("mass", [0.2, 0.5, 0.9])
def test_partial_plan_moves_exactly_the_mass_within_the_weights(mass):
    rng = np.random.default_rng(7)
    _, _, C_t, C_v, M = _random_problem(rng, 5, 8)
    T = joint_plan(C_t, C_v, M, mass=mass)
    assert T.sum() == pytest.approx(mass, abs=1e-6)
    assert np.all(T.sum(axis=1) <= 1 / 5 + 1e-6)
    assert np.all(T.sum(axis=0) <= 1 / 8 + 1e-6)


def test_partial_plan_leaves_the_unmatched_face_out():
    # Two mentions and three faces; face 2 agrees with no mention and has no structural partner.
    P_t = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    P_v = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])
    C_t = structure_from_distributions(P_t)
    C_v = structure_from_distributions(P_v)
    T = joint_plan(C_t, C_v, cross_cost(P_t, P_v), mass=2 / 3)
    assert T[:, 2].sum() < 1e-3
    assert T.argmax(axis=1).tolist() == [0, 1]
    balanced = joint_plan(C_t, C_v, cross_cost(P_t, P_v))
    assert balanced[:, 2].sum() == pytest.approx(1 / 3, abs=1e-5)  # balanced must place it


def test_identical_structures_give_identity_alignment():
    rng = np.random.default_rng(3)
    n = 7
    C = structure_from_embeddings(rng.normal(size=(n, 5)))
    T = joint_plan(C, C, 1.0 - np.eye(n))
    assert T.argmax(axis=1).tolist() == list(range(n))


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_permuted_structure_recovers_the_permutation(alpha):
    rng = np.random.default_rng(4)
    n = 8
    X = rng.normal(size=(n, 5))
    P = rng.dirichlet(np.full(10, 0.3), size=n)
    perm = rng.permutation(n)  # face j is mention perm[j]
    C_t = structure_from_embeddings(X)
    C_v = C_t[perm][:, perm]
    M = cross_cost(P, P[perm]) if alpha < 1 else np.zeros((n, n))
    T = joint_plan(C_t, C_v, M, alpha=alpha)
    assert T.argmax(axis=1).tolist() == np.argsort(perm).tolist()


def test_our_solvers_agree_with_pot():
    rng = np.random.default_rng(5)
    P_t, P_v, C_t, C_v, M = _random_problem(rng, 5, 6)
    ours = joint_plan(C_t, C_v, M, epsilon=0.1, tol=1e-10, max_iter=1000)
    theirs = ot.gromov.entropic_fused_gromov_wasserstein(
        M, C_t, C_v, epsilon=0.1, alpha=0.5, tol=1e-10, max_iter=1000
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    a, b, G = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(7)), rng.random((5, 7))
    T, _, _ = _sinkhorn_log(a, b, G, 0.05, n_iter=5000, tol=1e-12)
    np.testing.assert_allclose(
        T, ot.sinkhorn(a, b, G, 0.05, method="sinkhorn_log", stopThr=1e-12, numItermax=5000), atol=1e-9
    )
    Tp, _ = _partial_sinkhorn_log(a, b, G, 0.05, 0.6, n_iter=5000, tol=1e-13)
    np.testing.assert_allclose(
        Tp, ot.partial.entropic_partial_wasserstein(a, b, G, 0.05, m=0.6, numItermax=5000), atol=1e-9
    )


def test_rescore_keeps_rows_distributions():
    rng = np.random.default_rng(6)
    P_t, P_v, C_t, C_v, M = _random_problem(rng, 6, 4)
    P_t[2] = 0.0  # a mention with no candidate stays empty
    for mass in (1.0, 0.5):
        T = joint_plan(C_t, C_v, M, mass=mass)
        for keep in (True, False):
            Pt2, Pv2 = rescore(P_t, P_v, T, weight=0.4, keep_support=keep)
            assert Pt2.shape == P_t.shape and Pv2.shape == P_v.shape
            assert np.all(Pt2 >= 0) and np.all(Pv2 >= 0)
            sums = Pt2.sum(axis=1)
            np.testing.assert_allclose(np.delete(sums, 2), 1.0)
            assert sums[2] == 0.0 if keep else sums[2] == pytest.approx(1.0)
            np.testing.assert_allclose(Pv2.sum(axis=1), 1.0)
            if keep:
                assert np.all(Pt2[P_t == 0] == 0)  # never invents a candidate


def test_rescore_with_zero_weight_or_zero_mass_is_identity():
    rng = np.random.default_rng(8)
    P_t, P_v, C_t, C_v, M = _random_problem(rng, 3, 4)
    T = joint_plan(C_t, C_v, M)
    Pt2, Pv2 = rescore(P_t, P_v, T, weight=0.0)
    np.testing.assert_allclose(Pt2, P_t)
    np.testing.assert_allclose(Pv2, P_v)
    Pt2, Pv2 = rescore(P_t, P_v, np.zeros((3, 4)), weight=0.9)
    np.testing.assert_allclose(Pt2, P_t)
    np.testing.assert_allclose(Pv2, P_v)


@pytest.mark.parametrize("mass", [1.0, 0.5])
def test_face_evidence_flips_an_ambiguous_mention_but_not_a_confident_one(mass):
    # Entities: A=0, B=1, C=2. Mention 0 is 50/50 between A and B; mention 1 is confident in C.
    P_t = np.array([[0.5, 0.5, 0.0], [0.0, 0.1, 0.9]])
    # Face 0 is 90% A; face 1 is 80% B, 20% C: it disagrees with the confident mention 1.
    P_v = np.array([[0.9, 0.1, 0.0], [0.0, 0.8, 0.2]])
    T = joint_plan(structure_from_distributions(P_t), structure_from_distributions(P_v),
                   cross_cost(P_t, P_v), mass=mass)
    assert T.argmax(axis=1).tolist() == [0, 1]
    Pt2, Pv2 = rescore(P_t, P_v, T)
    assert Pt2[0].argmax() == 0  # ambiguous mention now picks A
    assert Pt2[1].argmax() == 2  # confident mention keeps C
    assert Pv2[0].argmax() == 0
    assert Pv2[1].argmax() == 1  # a confident face keeps its choice too
    # Without the joint step the ambiguous mention is a tie.
    assert P_t[0, 0] == P_t[0, 1]


def test_degenerate_sides_give_empty_plans():
    for n, m in [(0, 3), (4, 0), (0, 0)]:
        T = joint_plan(np.zeros((n, n)), np.zeros((m, m)), np.zeros((n, m)))
        assert T.shape == (n, m)
        P_t, P_v = np.full((n, 5), 0.2), np.full((m, 5), 0.2)
        Pt2, Pv2 = rescore(P_t, P_v, T)
        np.testing.assert_allclose(Pt2, P_t)
        np.testing.assert_allclose(Pv2, P_v)
        assert cross_cost(P_t, P_v).shape == (n, m)
    assert structure_from_embeddings(np.zeros((0, 4))).shape == (0, 0)


def test_bad_inputs_raise_value_errors():
    C, M = np.zeros((2, 2)), np.zeros((2, 2))
    with pytest.raises(ValueError, match="M must have shape"):
        joint_plan(C, C, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="alpha"):
        joint_plan(C, C, M, alpha=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        joint_plan(C, C, M, epsilon=0.0)
    with pytest.raises(ValueError, match="mass"):
        joint_plan(C, C, M, mass=0.0)
    with pytest.raises(ValueError, match="3 weights for 2 nodes"):
        joint_plan(C, C, M, a=np.ones(3))
    with pytest.raises(ValueError, match="square"):
        joint_plan(np.zeros((2, 3)), C, M)
    with pytest.raises(ValueError, match="NaN"):
        joint_plan(C, C, np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="weight"):
        rescore(np.eye(2), np.eye(2), M, weight=2.0)


def test_plan_log_and_warning_at_max_iter():
    rng = np.random.default_rng(3)
    _, _, C_t, C_v, M = _random_problem(rng, 4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a converging solve does not warn
        T, log = joint_plan(C_t, C_v, M, log=True)
    assert log["converged"] and log["err"] < 1e-6 and 1 <= log["n_iter"] < 200
    assert log["inner_iter"] >= log["n_iter"]
    np.testing.assert_array_equal(T, joint_plan(C_t, C_v, M))
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        _, log = joint_plan(C_t, C_v, M, max_iter=2, log=True)
    assert log["n_iter"] == 2 and not log["converged"] and log["err"] >= 1e-6


def test_joint_rescore_chains_the_steps():
    P_t = np.array([[0.5, 0.5, 0.0], [0.0, 0.1, 0.9]])
    P_v = np.array([[0.9, 0.1, 0.0]])
    Pt2, Pv2, T = joint_rescore(P_t, P_v)
    assert T.shape == (2, 1) and T.sum() == pytest.approx(1.0, abs=1e-6)
    assert Pt2[0].argmax() == 0 and Pt2[1].argmax() == 2 and Pv2[0].argmax() == 0
    Pt0, Pv0, T0 = joint_rescore(np.zeros((0, 3)), P_v)
    assert T0.shape == (0, 1) and Pt0.shape == (0, 3)
    np.testing.assert_allclose(Pv0, P_v)
