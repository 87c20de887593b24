"""compare_fits: original, one replicate and combined, per term; formulas; the analyse command."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from synth_assets.catalog import parse_catalog
from synth_assets.cli import main
from synth_assets.inference import ModelError, compare_fits, load_release, parse_formula
from synth_assets.inference.compare import referenced_columns
from synth_assets.inference.guide import inference_card
from synth_assets.inference.models import fit_ols
from synth_assets.publication.release import publish_release
from synth_assets_tests.matching.test_sources import CATALOG
from synth_assets_tests.test_packaging import ROOT, _run_without_extras

# --- formulas -----------------------------------------------------------------------------


def test_formula_splits_on_tilde_and_top_level_plus():
    assert parse_formula("y ~ a + b + log1p(c)") == ("y", ["a", "b", "log1p(c)"])
    assert parse_formula("tenure == 'owner' ~ age+ I(age ** 2) + 1") == ("tenure == 'owner'", ["age", "age ** 2"])
    # '+' inside parentheses or quotes belongs to its term
    assert parse_formula("log(a + b) ~ log1p(c + d) + (e == 'x+y')") == ("log(a + b)", ["log1p(c + d)", "(e == 'x+y')"])
    assert parse_formula("y ~ I(a) * I(b)") == ("y", ["I(a) * I(b)"])  # not one I(...): left as it is


@pytest.mark.parametrize("formula", ["y", "y ~", "~ x", "y ~ a ~ b", "y ~ a + + b", "y ~ a - 1", "y ~ 0 + a", "y ~ 1"])
def test_malformed_formulas_are_refused(formula):
    with pytest.raises(ModelError):
        parse_formula(formula)


def test_referenced_columns_are_names_not_functions():
    assert referenced_columns(["log1p(labour_income)", "age ** 2", "tenure == 'owner'"]) == [
        "labour_income", "age", "tenure"]


# --- the table on proper replicates of a known normal model ----------------------------------

N_REAL, M = 400, 5


def _population(rng: np.random.Generator, n: int, slope: float = 2.0) -> pd.DataFrame:
    x = rng.normal(size=n)
    group = rng.choice(["a", "b", "c"], size=n)
    y = 1 + slope * x + 0.5 * (group == "b") - 0.3 * (group == "c") + rng.normal(size=n)
    return pd.DataFrame({"x": x, "group": group, "y": y})


def _proper_replicates(original: pd.DataFrame, rng: np.random.Generator, m: int, size: int) -> list[pd.DataFrame]:
    """Fully synthetic replicates: a posterior draw of (β, σ²) given the original, then new records."""
    y = original["y"].to_numpy()
    X = np.column_stack([np.ones(len(original)), original["x"], original["group"] == "b", original["group"] == "c"])
    X = X.astype(float)
    n, p = X.shape
    xtx_inv = np.linalg.inv(X.T @ X)
    beta_hat = xtx_inv @ X.T @ y
    s2 = float(((y - X @ beta_hat) ** 2).sum()) / (n - p)
    replicates = []
    for _ in range(m):
        sigma2 = (n - p) * s2 / rng.chisquare(n - p)
        beta = rng.multivariate_normal(beta_hat, sigma2 * xtx_inv)
        rows = rng.integers(0, n, size)  # the predictors' distribution by the bootstrap
        Xs = X[rows]
        ys = Xs @ beta + rng.normal(scale=np.sqrt(sigma2), size=size)
        replicates.append(pd.DataFrame({"x": Xs[:, 1], "group": original["group"].to_numpy()[rows], "y": ys}))
    return replicates


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(12)
    original = _population(rng, N_REAL)
    return original, _proper_replicates(original, rng, M, 4 * N_REAL)


def test_table_has_original_one_replicate_and_combined(simulated):
    original, replicates = simulated
    table = compare_fits(replicates, "ols", "y ~ x + group", original=original, n_real=N_REAL)
    assert list(table.index) == ["(Intercept)", "x", "group[b]", "group[c]"]
    assert list(table.columns) == ["original", "original_se", "one_replicate", "one_replicate_se", "combined",
                                   "combined_se", "se_ratio", "df", "lower", "upper", "floor_used", "covers_original"]
    direct = fit_ols(original, "y", ["x", "group"])
    np.testing.assert_allclose(table["original"], direct.coef)
    np.testing.assert_allclose(table["original_se"], direct.se)
    first = fit_ols(replicates[0], "y", ["x", "group"], levels={"group": ["a", "b", "c"]})
    np.testing.assert_allclose(table["one_replicate"], first.coef)
    np.testing.assert_allclose(table["one_replicate_se"], first.se)  # naive: as if replicate 1 were real
    each = np.array([fit_ols(r, "y", ["x", "group"]).coef for r in replicates])
    np.testing.assert_allclose(table["combined"], each.mean(axis=0))
    # The augmented SE holds the posterior uncertainty the naive one leaves out (4x the records
    # of the original: the naive SE is half the original's, the combined one at least the original's).
    assert (table["combined_se"] > 1.5 * table["one_replicate_se"]).all()
    assert (table["combined_se"] > 0.9 * table["original_se"]).all()
    assert (table["df"] == M - 1).all()
    inside = (table["lower"] <= table["original"]) & (table["original"] <= table["upper"])
    assert (table["covers_original"] == inside).all()
    assert table["covers_original"].all()  # a proper model: the intervals cover the original here


def test_coverage_column_says_when_the_original_is_missed(simulated):
    _, replicates = simulated
    other = _population(np.random.default_rng(3), N_REAL, slope=5.0)  # a different truth for x
    table = compare_fits(replicates, "ols", "y", ["x", "group"], original=other, n_real=N_REAL)
    assert not table.loc["x", "covers_original"]
    assert not (table.loc["x", "lower"] <= other_slope(other) <= table.loc["x", "upper"])


def other_slope(frame: pd.DataFrame) -> float:
    return float(fit_ols(frame, "y", ["x", "group"]).coef[1])


def test_formula_and_columns_give_one_table_and_where_and_replicate_apply(simulated):
    original, replicates = simulated
    by_formula = compare_fits(replicates, "ols", "y ~ x + I(x ** 2)", where="group != 'c'", replicate=3)
    by_columns = compare_fits(replicates, "ols", "y", ["x", "x ** 2"], where="group != 'c'", replicate=3)
    pd.testing.assert_frame_equal(by_formula, by_columns)
    assert "original" not in by_formula and "covers_original" not in by_formula
    third = fit_ols(replicates[2].query("group != 'c'"), "y", ["x", "x ** 2"])
    np.testing.assert_allclose(by_formula["one_replicate"], third.coef)


def test_logit_table(simulated):
    original, replicates = simulated
    table = compare_fits(replicates, "logit", "y > 1 ~ x", original=original, n_real=N_REAL)
    assert list(table.index) == ["(Intercept)", "x"]
    assert table.loc["x", "original"] > 0 and table["covers_original"].dtype == bool


@pytest.mark.parametrize(("args", "message"), [
    (("ols", "y ~ x + nowhere"), "no column 'nowhere'"),
    (("probit", "y ~ x"), "kind must be"),
    (("ols", "y ~ x", ["x"]), "not both"),
])
def test_unusable_models_are_refused_with_a_message(simulated, args, message):
    _, replicates = simulated
    with pytest.raises(ModelError, match=message):
        compare_fits(replicates, *args)


# --- a published release, the top-level import and the command ------------------------------


@pytest.fixture()
def public(tmp_path):
    rng = np.random.default_rng(0)
    frames = []
    for r in (1, 2, 3):
        x = rng.normal(size=400)
        frames.append(pd.DataFrame({"age": x, "food": 2 * x + rng.normal(size=400), "replicate": r}))
    card = inference_card(parse_catalog(CATALOG), {"register": 1000, "work": 400, "budget": 150})
    publish_release(pd.concat(frames, ignore_index=True), public_dir=tmp_path / "public", wave="2024",
                    report_dir=tmp_path / "reports", provenance={}, model={}, metrics={}, checks=[], inference=card)
    x = rng.normal(size=1000)
    pd.DataFrame({"age": x, "food": 2 * x + rng.normal(size=1000)}).to_parquet(tmp_path / "truth.parquet")
    return tmp_path / "public"


def test_release_gives_n_real_from_its_card(public):
    table = compare_fits(load_release(public), "ols", "food ~ age")
    assert table.attrs["n_real"] == 150  # the budget survey's respondents, from the data card


def test_top_level_load_release():
    import synth_assets

    assert synth_assets.load_release is load_release
    assert synth_assets.compare_fits is compare_fits
    with pytest.raises(AttributeError):
        synth_assets.no_such_thing  # noqa: B018


def test_import_synth_assets_stays_light():
    result = subprocess.run([sys.executable, "-c", "import sys, synth_assets; "
                             "print(sorted(m for m in ('pandas', 'synth_assets.inference') if m in sys.modules))"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_analyse_prints_the_table(public, capsys):
    truth = public.parent / "truth.parquet"
    code = main(["analyse", "--release", str(public / "LATEST"), "--model", "food ~ age", "--original", str(truth),
                 "--csv", str(public.parent / "table.csv")])
    out = capsys.readouterr().out
    assert code == 0
    assert "OLS food ~ age" in out and "n_real = 150" in out
    assert "| age " in out and "covers_original" in out and "one_replicate_se" in out
    written = pd.read_csv(public.parent / "table.csv", index_col="term")
    assert written.loc["age", "covers_original"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--model", "food ~ nowhere"], "no column 'nowhere'"),
    (["--model", "food"], "one '~'"),
    (["--model", "food ~ age", "--kind", "probit"], "invalid choice"),
    (["--model", "food ~ age", "--original", "missing.parquet"], "does not exist"),
    (["--model", "food ~ age", "--replicate", "9"], "replicate 9 is not one of 1..3"),
    (["--model", "food ~ age", "--where", "age >"], "cannot fit"),
])
def test_analyse_refuses_bad_input_in_one_line(public, capsys, extra, message):
    code = main(["analyse", "--release", str(public), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and "\n" not in err


def test_analyse_without_a_release(tmp_path, capsys):
    assert main(["analyse", "--release", str(tmp_path), "--model", "y ~ x"]) == 2
    assert "no release at" in capsys.readouterr().err


def test_analyse_runs_without_the_pipeline_extras(public):
    result = _run_without_extras(textwrap.dedent(f"""
        from synth_assets.cli import main
        assert main(["analyse", "--release", {str(public)!r}, "--model", "food ~ age"]) == 0
        import sys
        assert "dagster" not in sys.modules
        """))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| age" in result.stdout
