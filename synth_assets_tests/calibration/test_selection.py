"""The search's proposals: a partner of the same stratum, drawn evenly among those that may come in."""

import numpy as np

from synth_assets.calibration.selection import _Strata


def test_a_proposed_partner_is_of_the_same_stratum_eligible_and_drawn_evenly():
    rng = np.random.default_rng(0)
    stratum = rng.integers(0, 6, size=3000)
    stratum[stratum == 5] = 4  # a stratum with no household at all (5) in the middle of the codes
    stratum[:3] = 7
    chosen = rng.random(3000) < 0.4
    eligible = ~chosen
    eligible[stratum == 7] = False  # a stratum whose households may none come in
    strata = _Strata(stratum)
    picks = np.zeros(3000, dtype=np.int64)
    for _ in range(300):
        out_, in_ = strata.propose(chosen, eligible, 500, rng)
        assert len(out_) == len(in_) and chosen[out_].all() and len(np.unique(out_)) == len(out_)
        assert (stratum[in_] == stratum[out_]).all() and eligible[in_].all()
        assert not (stratum[out_] == 7).any()  # no partner there: left out
        picks += np.bincount(in_, minlength=3000)
    # each eligible household of a stratum about equally often (a sort by stratum would give the same)
    for s in range(5):
        members = np.flatnonzero((stratum == s) & eligible)
        if len(members):
            counts = picks[members]
            assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.6 * counts.mean()
    assert strata.propose(chosen, np.zeros(3000, dtype=bool), 10, rng)[0].size == 0
