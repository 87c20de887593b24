"""The search's proposals: a partner of the same stratum, drawn evenly among those that may come in."""

import numpy as np

from synth_assets.calibration.selection import _Strata


def _households(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    stratum = rng.integers(0, 6, size=3000)
    stratum[stratum == 5] = 4  # a stratum with no household at all (5) in the middle of the codes
    stratum[:3] = 7
    chosen = rng.random(3000) < 0.4
    chosen[stratum == 7] = True  # a stratum whose households are all chosen: none may come in
    return stratum, chosen


def _assert_drawn_evenly(picks: np.ndarray, stratum: np.ndarray, eligible: np.ndarray) -> None:
    # each eligible household of a stratum about equally often
    for s in range(5):
        members = np.flatnonzero((stratum == s) & eligible)
        if len(members):
            counts = picks[members]
            assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.6 * counts.mean()


def test_a_proposed_partner_is_of_the_same_stratum_not_chosen_and_drawn_evenly():
    rng = np.random.default_rng(0)
    stratum, chosen = _households(rng)
    strata = _Strata(stratum, chosen)
    picks = np.zeros(3000, dtype=np.int64)
    for _ in range(300):
        out_, in_ = strata.propose(chosen, 500, rng)
        assert len(out_) == len(in_) and chosen[out_].all() and len(np.unique(out_)) == len(out_)
        assert (stratum[in_] == stratum[out_]).all() and not chosen[in_].any()
        assert not (stratum[out_] == 7).any()  # no partner there: left out
        picks += np.bincount(in_, minlength=3000)
    _assert_drawn_evenly(picks, stratum, ~chosen)
    assert strata.propose(np.zeros(3000, dtype=bool), 10, rng)[0].size == 0


def test_proposals_follow_the_swaps_made_so_far():
    """A swap exchanges two households' places in their stratum: the next proposals bring in the
    household taken out and never the one brought in, as if the strata were ordered afresh."""
    rng = np.random.default_rng(1)
    stratum, chosen = _households(rng)
    strata = _Strata(stratum, chosen)
    brought_in: set[int] = set()
    for _ in range(200):
        out_, in_ = strata.propose(chosen, 50, rng)
        assert (stratum[in_] == stratum[out_]).all() and not chosen[in_].any() and chosen[out_].all()
        for i, j in zip(out_[:10].tolist(), in_[:10].tolist()):
            if chosen[i] and not chosen[j]:  # a pair whose households an earlier swap did not touch
                chosen[i], chosen[j] = False, True
                strata.swapped(i, j)
                brought_in.add(j)
    assert len(brought_in) > 500
    fresh = _Strata(stratum, chosen.copy())
    for s in range(8):
        block = slice(strata.starts[s], strata.starts[s] + strata.not_chosen[s])
        assert set(strata.perm[block]) == set(fresh.perm[block]) == set(np.flatnonzero((stratum == s) & ~chosen))


def test_a_partner_in_focus_is_of_the_same_stratum_not_chosen_in_focus_and_drawn_evenly():
    rng = np.random.default_rng(2)
    stratum, chosen = _households(rng)
    focus = rng.random(3000) < 0.5
    focus[stratum == 3] = False  # a stratum with no household in focus
    strata = _Strata(stratum, chosen)
    picks = np.zeros(3000, dtype=np.int64)
    for _ in range(300):
        out_, in_ = strata.propose(chosen, 500, rng, in_focus=focus)
        assert (stratum[in_] == stratum[out_]).all() and not chosen[in_].any() and focus[in_].all()
        assert not np.isin(stratum[out_], [3, 7]).any()
        picks += np.bincount(in_, minlength=3000)
    _assert_drawn_evenly(picks, stratum, ~chosen & focus)
