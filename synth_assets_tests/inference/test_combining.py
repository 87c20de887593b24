"""The fully synthetic rule on proper replicates: coverage, the floor, the degrees of freedom."""

import numpy as np
import pytest
from scipy.special import stdtrit

from synth_assets.inference import combine_estimates, fit_replicates


def test_df_and_variance_formula():
    q = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    u = np.full(5, 0.5)
    c = combine_estimates(q, u)
    b = q.var(ddof=1)  # 2.5
    assert c.variance == pytest.approx(1.2 * b - 0.5)
    assert 4 * (1 - 5 * 0.5 / (6 * b)) ** 2 < 4  # RRR's ν_f, never above m − 1 ...
    assert c.df == 4  # ... so ν = m − 1 (module doc)

    low, high = c.interval()
    assert high - c.estimate == pytest.approx(stdtrit(c.df, 0.975) * np.sqrt(1.2 * b - 0.5))
    assert not c.fallback


def test_negative_tf_triggers_the_floor_scaled_by_sizes():
    q = np.array([1.0, 1.01, 0.99, 1.0, 1.0])  # b tiny against u
    u = np.full(5, 0.04)
    c = combine_estimates(q, u, n_real=1000, n_syn=50000)
    assert c.fallback
    positive_but_small = combine_estimates(np.array([1.0, 1.5, 0.5, 1.2, 0.8]), u, n_real=1000, n_syn=50000)
    assert (1.2 * 0.145 - 0.04) > 0 and positive_but_small.fallback  # T_f > 0 but below T* = 2.0
    assert c.variance == pytest.approx(50 * 0.04)  # T* = n_syn / n_real * ū
    assert c.df == 4
    equal = combine_estimates(q, u)
    assert equal.variance == pytest.approx(0.04)


def _proper_replicates(rng, n_obs, n_syn, m, mu=1.0, sigma=2.0):
    """Observed data from N(mu, sigma²); m synthetic datasets from the posterior predictive."""
    y = rng.normal(mu, sigma, n_obs)
    mean, s2 = y.mean(), y.var(ddof=1)
    out = []
    for _ in range(m):
        sigma2 = (n_obs - 1) * s2 / rng.chisquare(n_obs - 1)  # posterior draw (flat prior)
        mu_draw = rng.normal(mean, np.sqrt(sigma2 / n_obs))
        out.append(rng.normal(mu_draw, np.sqrt(sigma2), n_syn))
    return out


def test_proper_replicates_of_a_normal_model_cover_about_95_percent():
    """Survey-sized real data (200), population-sized replicates (2,000), as in a release."""
    rng = np.random.default_rng(7)
    covered, widths = 0, []
    runs = 300
    for _ in range(runs):
        replicates = _proper_replicates(rng, n_obs=200, n_syn=2000, m=5)
        fit = fit_replicates(replicates, lambda x: (x.mean(), x.var(ddof=1) / len(x)), n_real=200)
        low, high = fit.interval()
        covered += bool(low[0] <= 1.0 <= high[0])
        widths.append((high - low)[0] / (2 * 1.96 * 2.0 / np.sqrt(200)))  # against the real data's own
    assert covered / runs >= 0.92
    assert np.median(widths) < 2.0  # not bought with useless intervals
