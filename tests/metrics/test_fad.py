"""FAD against closed forms, against fadtk's scipy route, and its small-sample corrections."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from musicot.metrics.fad import Gaussian, bootstrap_ci, fad, fad_infinity, frechet_distance


def _fadtk(a: Gaussian, b: Gaussian) -> float:
    """fadtk's calc_frechet_distance: scipy sqrtm of the product, real part."""
    covmean = linalg.sqrtm(a.cov.dot(b.cov))  # fadtk passes disp=False, deprecated in scipy 1.17
    diff = a.mean - b.mean
    return float(diff.dot(diff) + np.trace(a.cov) + np.trace(b.cov) - 2 * np.trace(covmean.real))


def test_closed_form_for_gaussians_with_known_covariances():
    # Commuting covariances (same eigenvectors): FD = |dmu|^2 + sum (sqrt(l_a) - sqrt(l_b))^2.
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    la, lb = np.array([4.0, 1.0, 0.25, 9.0]), np.array([1.0, 1.0, 1.0, 4.0])
    a = Gaussian(np.array([1.0, 0.0, 2.0, 0.0]), q @ np.diag(la) @ q.T)
    b = Gaussian(np.array([0.0, 0.0, 0.0, 3.0]), q @ np.diag(lb) @ q.T)
    expected = 1 + 4 + 9 + np.sum((np.sqrt(la) - np.sqrt(lb)) ** 2)  # 14 + (1 + 0 + 0.25 + 1)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-10)
    # Equal covariances: only the means count.
    assert frechet_distance(a, Gaussian(a.mean + 2.0, a.cov)) == pytest.approx(4 * 4, rel=1e-10)


def test_agrees_with_scipy_sqrtm_on_random_data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 16)) @ rng.standard_normal((16, 16))
    y = rng.standard_normal((250, 16)) @ rng.standard_normal((16, 16)) + 0.5
    a, b = Gaussian.fit(x), Gaussian.fit(y)
    assert frechet_distance(a, b) == pytest.approx(_fadtk(a, b), rel=1e-6)
    assert fad(x, y) == pytest.approx(_fadtk(a, b), rel=1e-6)


def test_a_set_against_itself_is_zero_and_rank_deficient_sets_stay_finite():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 8))
    assert fad(x, x) == pytest.approx(0.0, abs=1e-9)
    few = rng.standard_normal((5, 32))  # covariance of rank 4 in 32 dimensions
    value = fad(few, rng.standard_normal((6, 32)))
    assert np.isfinite(value) and value > 0


def test_fad_infinity_removes_the_small_sample_bias():
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((4000, 8))
    same = rng.standard_normal((200, 8))  # the same distribution: true FAD 0
    finite = fad(same, reference)
    inf, slope = fad_infinity(same, reference, np.random.default_rng(4))
    assert finite > 0.05 and abs(inf) < finite / 3 and slope > 0


def test_bootstrap_ci_over_songs_brackets_the_estimate():
    rng = np.random.default_rng(5)
    evaluated = rng.standard_normal((120, 6)) + 0.5
    groups = np.repeat(np.arange(40), 3)  # 40 songs of 3 windows
    reference = rng.standard_normal((300, 6))
    low, high = bootstrap_ci(evaluated, reference, groups, np.random.default_rng(6), n_boot=100)
    assert low < fad(evaluated, reference) < high
    with pytest.raises(ValueError, match="group labels"):
        bootstrap_ci(evaluated, reference, groups[:-1], rng)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="n >= 2"):
        fad(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="NaN"):
        fad(np.full((3, 2), np.nan), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="dimensions differ"):
        fad(np.random.default_rng(0).standard_normal((5, 3)), np.random.default_rng(1).standard_normal((5, 4)))
