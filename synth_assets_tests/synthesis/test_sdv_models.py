"""SDV families behind the common interface: schema, point masses, losses, time budget."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import pytest

from synth_assets.synthesis import SDVSynthesizer, load_synthesizer, make_synthesizer, plot_losses

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def copula(persons: pd.DataFrame) -> SDVSynthesizer:
    return make_synthesizer("copula", seed=1).fit(persons)


@pytest.fixture(scope="module")
def ctgan(persons: pd.DataFrame) -> SDVSynthesizer:
    return make_synthesizer("ctgan", seed=1, epochs=2).fit(persons)


def test_copula_keeps_point_masses_codes_and_missing_rates(copula: SDVSynthesizer, persons: pd.DataFrame) -> None:
    out = copula.sample(2000, seed=1)
    assert out.dtypes.equals(persons.dtypes)
    assert abs((out["income"] == 0).mean() - (persons["income"] == 0).mean()) < 0.05
    assert abs(out["income"].isna().mean() - persons["income"].isna().mean()) < 0.05
    assert abs((out["hours"] == -8).mean() - (persons["hours"] == -8).mean()) < 0.05
    assert out["household_income"].between(persons["household_income"].min(), persons["household_income"].max()).all()


def test_copula_round_trip_through_a_file(copula: SDVSynthesizer, tmp_path: Path) -> None:
    loaded = load_synthesizer(copula.save(tmp_path / "copula.model"))
    pd.testing.assert_frame_equal(loaded.sample(200, seed=5), copula.sample(200, seed=5))


def test_ctgan_output_schema_and_training_log(ctgan: SDVSynthesizer, persons: pd.DataFrame) -> None:
    out = ctgan.sample(300, seed=2)
    assert list(out.columns) == list(persons.columns)
    assert out.dtypes.equals(persons.dtypes)
    assert out["region"].cat.categories.equals(persons["region"].cat.categories)
    assert set(out["hours"].unique()) - {-8, 0} <= set(range(10, 50))  # codes exact, values in range
    log = ctgan.training_log
    assert log["epochs"] == 2 and not log["stopped_by_budget"]
    assert {k: len(v) for k, v in log["losses"].items()} == {"generator": 2, "discriminator": 2}
    import torch

    assert log["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def test_ctgan_same_seed_same_rows_after_reload(ctgan: SDVSynthesizer, tmp_path: Path) -> None:
    loaded = load_synthesizer(ctgan.save(tmp_path / "ctgan.model"))
    pd.testing.assert_frame_equal(loaded.sample(100, seed=3), ctgan.sample(100, seed=3))


def test_loss_plot_is_a_png(ctgan: SDVSynthesizer, copula: SDVSynthesizer) -> None:
    png = plot_losses(ctgan)
    assert png is not None and png.startswith(b"\x89PNG")
    assert plot_losses(copula) is None


def test_time_budget_stops_training(persons: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    synth = make_synthesizer("ctgan", seed=0, epochs=1000, max_seconds=3)
    started = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="synth_assets.synthesis"):
        synth.fit(persons)
    assert time.perf_counter() - started < 30
    log = synth.training_log
    assert log["stopped_by_budget"] and 1 <= log["epochs"] < 1000
    assert len(log["losses"]["generator"]) == log["epochs"]
    assert any("epoch 1/1000" in r.getMessage() for r in caplog.records)
    assert any("time budget" in r.getMessage() for r in caplog.records)
    assert synth.sample(50).shape == (50, persons.shape[1])  # a stopped model still samples


def test_tvae_trains_and_samples(persons: pd.DataFrame) -> None:
    synth = make_synthesizer("tvae", seed=0, epochs=2).fit(persons)
    assert synth.training_log["epochs"] == 2 and len(synth.training_log["losses"]["loss"]) == 2
    assert synth.sample(100).dtypes.equals(persons.dtypes)


def test_unknown_family_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown synthesiser family 'diffusion'"):
        make_synthesizer("diffusion")


def test_two_fits_with_one_seed_give_the_same_model(persons: pd.DataFrame) -> None:
    """Column transforms run in the calling thread: threads raced on numpy's global state."""
    first, second = (make_synthesizer("tvae", seed=5, epochs=3).fit(persons) for _ in range(2))
    pd.testing.assert_frame_equal(first.sample(200, seed=1), second.sample(200, seed=1))


def test_calibration_puts_numbers_on_the_training_marginals_and_leaves_codes_alone(persons: pd.DataFrame) -> None:
    """An undertrained TVAE: its incomes are off until calibrated; -8 and missing keep their shares."""
    from scipy.stats import ks_2samp

    raw = make_synthesizer("tvae", seed=0, epochs=2, calibrate_marginals=False).fit(persons).sample(2000, seed=1)
    calibrated_model = make_synthesizer("tvae", seed=0, epochs=2).fit(persons)
    assert calibrated_model.calibrates_marginals and not make_synthesizer("copula").calibrates_marginals
    calibrated = calibrated_model.sample(2000, seed=1)

    def ks(frame, column):
        return ks_2samp(frame[column].dropna(), persons[column].dropna()).statistic

    for column in ("income", "age", "household_income"):
        assert ks(calibrated, column) < 0.05 < ks(raw, column) or ks(calibrated, column) < ks(raw, column) / 2, column
    # Zeros are part of the income distribution: their share becomes the training share.
    adults_zero = (persons["income"] == 0).mean()
    assert abs((calibrated["income"] == 0).mean() - adults_zero) < 0.03
    # Codes and missing values keep the shares the model generated.
    assert (calibrated["hours"] == -8).mean() == pytest.approx((raw["hours"] == -8).mean(), abs=0.03)
    assert calibrated["income"].isna().mean() == pytest.approx(raw["income"].isna().mean(), abs=0.03)
    assert set(calibrated["hours"].unique()) - {-8, 0} <= set(range(10, 50))
