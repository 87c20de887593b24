"""Demo population generator: the project's embedded default data and ground truth.

A fictional city of 19 municipalities (households, persons, hidden traits), an
administrative register for every wave and four anonymous sample surveys
(SILC, HBS, LFS, HFCS) drawn from it by stratified designs with calibrated
weights, delivered in messy real-world formats (CSV with decimal commas,
Stata, SPSS, Parquet), plus the complete truth for evaluation.

    from synth_assets.demo import generate_demo
    manifest = generate_demo(Path("data"), persons=50_000)

See :mod:`synth_assets.demo.generate` for the file layout and
``data/catalog.yaml`` for how each file maps to the harmonised schema.
"""

from .generate import MAX_PERSONS, MIN_PERSONS, DemoFile, DemoManifest, generate_demo, survey_calendar

__all__ = ["DemoFile", "DemoManifest", "MAX_PERSONS", "MIN_PERSONS", "generate_demo", "survey_calendar"]
