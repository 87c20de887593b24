"""``synth-assets run`` through its entry point: a failed step means a non-zero exit, with the reason first."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from synth_assets.operations.runner import step_failure_message


def _error_chain():
    from dagster._utils.error import serializable_error_info_from_exc_info

    from synth_assets.ingest import IngestError

    try:
        try:
            try:
                float("not a number")
            except ValueError as inner:
                raise IngestError("silc_2022.csv: column 'pweight': bad value 'x' in row 3") from inner
        except IngestError as exc:
            raise RuntimeError("Error occurred while executing op raw_silc") from exc
    except RuntimeError:
        return serializable_error_info_from_exc_info(sys.exc_info())


def test_step_failure_puts_the_projects_message_first():
    message = step_failure_message(_error_chain())
    first, _, rest = message.partition("\n")
    assert first == "synth_assets.ingest.readers.IngestError: silc_2022.csv: column 'pweight': bad value 'x' in row 3"
    assert "caused by: ValueError: could not convert string to float" in rest


@pytest.mark.slow
def test_run_exits_non_zero_when_an_ingest_failed_even_with_a_release(data_root, tmp_path, monkeypatch, capsys):
    from synth_assets.cli import main

    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    broken = data_root / "incoming" / "silc" / "silc_2022.csv"
    options = {"sep": ";", "decimal": ",", "encoding": "latin-1"}
    frame = pd.read_csv(broken, dtype=str, keep_default_na=False, **options)
    frame.loc[2, "pweight"] = "inf"
    frame.to_csv(broken, index=False, **options)

    code = main(["run", "--data", str(data_root), "--family", "cart", "--replicates", "2"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "[FAILED] ingest silc wave 2022" in out
    reason = out.split("[FAILED] ingest silc wave 2022", 1)[1].splitlines()[1].strip()
    assert reason.startswith("step raw_silc failed: synth_assets.ingest.readers.IngestError: "), reason
    assert str(broken) in reason and "column 'pweight'" in reason and "inf in 1 row(s), first rows 3" in reason
    # The other waves went on to a release; the run still failed, and says so at the end.
    assert "Public fictitious dataset:" in out
    assert "1 run(s) failed:" in out.split("Public fictitious dataset:")[0]
