"""load_release reads a published release; n_real picks the smallest source of an estimate."""

import numpy as np
import pandas as pd

from synth_assets.catalog import parse_catalog
from synth_assets.inference import load_release, ols_on_replicates
from synth_assets.inference.guide import guide_markdown, inference_card
from synth_assets.publication.release import publish_release
from synth_assets_tests.matching.test_sources import CATALOG


def test_published_release_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = []
    for r in (1, 2, 3):
        x = rng.normal(size=500)
        frames.append(pd.DataFrame({"age": x, "food": 2 * x + rng.normal(size=500), "replicate": r}))
    catalog = parse_catalog(CATALOG)
    card_inference = inference_card(catalog, {"register": 1000, "work": 400, "budget": 150})
    target, card = publish_release(
        pd.concat(frames, ignore_index=True), public_dir=tmp_path / "public", wave="2024",
        report_dir=tmp_path / "reports", provenance={}, model={}, metrics={}, checks=[],
        inference=card_inference,
    )
    release = load_release(tmp_path / "public")  # LATEST
    assert release.path == target and len(release.replicates) == 3
    assert "replicate" not in release.replicates[0]
    assert release.n_real(["food"]) == 150  # budget survey respondents
    assert release.n_real(["age"]) == 1000  # register only
    assert release.n_real(["food", "hours"]) == 150  # the smallest source involved
    fit = ols_on_replicates(release.replicates, "food", ["age"], n_real=release.n_real(["food", "age"]))
    low, high = fit.interval()
    assert low[1] < 2 < high[1]
    assert "how to combine" in (target / "data_card.md").read_text()
    assert "n_real" in guide_markdown()
