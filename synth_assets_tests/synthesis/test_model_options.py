"""The families' options: read from their constructors, checked, and given to the model that has them."""

from __future__ import annotations

import pytest

from synth_assets.synthesis.factory import build_population_synthesizer, check_model_params, model_options


def test_options_come_from_the_constructors():
    assert {"min_leaf", "smoothing", "bootstrap", "max_depth", "stratum"} <= set(model_options("cart"))
    assert {"batch_size", "model_params", "calibrate_marginals"} <= set(model_options("ctgan"))
    assert not {"seed", "blocks", "id_columns", "special_codes"} & set(model_options("cart"))


def test_options_are_checked_and_typed():
    assert check_model_params(["cart"], {"min_leaf": 20.0, "stratum": None}) == {"min_leaf": 20, "stratum": None}
    with pytest.raises(ValueError, match="'min_leef' is not an option of cart; valid: .*min_leaf"):
        check_model_params(["cart"], {"min_leef": 3})
    with pytest.raises(ValueError, match="min_leaf='many'"):
        check_model_params(["cart"], {"min_leaf": "many"})
    with pytest.raises(ValueError, match="n_jobs=0"):  # refused with the settings, not when the model is built
        check_model_params(["cart"], {"n_jobs": 0})
    assert check_model_params(["ctgan", "cart"], {"batch_size": 100, "min_leaf": 9}) == {"batch_size": 100, "min_leaf": 9}
    with pytest.raises(ValueError, match="'min_leef' is not an option of cart"):
        build_population_synthesizer("cart", household_id="household_id", min_leef=3)


def test_an_option_reaches_both_models(people):
    model = build_population_synthesizer("cart", household_id="household_id", min_leaf=7, smoothing=False,
                                         epochs=3, seed=0).fit(people)
    for part in (model.household_model, model.person_model):
        assert part.min_leaf == 7 and part.training_log["min_leaf"] == 7 and part.smoothing is False
