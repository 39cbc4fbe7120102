import warnings

import numpy as np
import pytest

from musicot.metrics.correlation import pearson


def test_matches_numpy_on_varied_columns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = 0.5 * x + rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    assert pearson(x, -x) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "x, y",
    [
        ([0.1, 0.4], [1.0, 2.0]),  # two pairs: r is +-1 whatever they are
        ([0.3, 0.3, 0.3], [1.0, 2.0, 3.0]),
        ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]),
        (np.full(7, 0.1, dtype=np.float32), np.arange(7.0)),  # constant float32: np.std is not exactly 0
    ],
)
def test_nan_where_r_means_nothing_without_a_numpy_warning(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(pearson(x, y))
