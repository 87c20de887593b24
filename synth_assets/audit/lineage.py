"""The lineage of a public release, for privacy officers: JSON, a readable page, and a proof.

Plain Python: the Dagster layer (``synth_assets.operations.lineage``) collects the facts from the
instance's event log into a :class:`Lineage`; this module renders it and re-runs the test
that the release holds no record of the raw files or of the matched dataset.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from synth_assets.common.files import write_text
from synth_assets.common.hashing import file_sha256, row_hashes
from synth_assets.common.html import html_document
from synth_assets.validation.privacy.copies import disclosive_copies, replicated_uniques


@dataclass
class AssetStep:
    """One materialisation that fed the release."""

    asset: str
    partition: str | None
    run_id: str
    timestamp: float
    code_version: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckResult:
    asset: str
    check: str
    partition: str | None
    passed: bool | None
    run_id: str | None
    description: str | None = None


@dataclass
class Lineage:
    release: str
    release_path: str
    wave: str
    created_utc: str
    sources: dict[str, dict[str, Any]]
    steps: list[AssetStep]
    checks: list[CheckResult]
    model: dict[str, Any]
    copy_test: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_release_files(release_path: Path, card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Recompute every checksum of the data card: a release altered after the gate shows here."""
    result = {}
    for name, expected in card.get("checksums", {}).items():
        path = release_path / name
        actual = file_sha256(path) if path.exists() else None
        result[name] = {"sha256": actual, "expected": expected, "intact": actual == expected}
    return result


def copy_test(
    release_path: Path,
    strict: dict[str, pd.DataFrame],
    uniques: dict[str, pd.DataFrame],
    exclude: set[str],
    *,
    quasi_identifiers: list[str] | None = None,
    k: int | None = None,
) -> dict[str, Any]:
    """Re-run the gate's copy test on the released files.

    With ``quasi_identifiers`` and ``k`` (the catalog's ``release``), the gate's filters:
    no released record reproduces a record of any reference that fewer than ``k`` of its
    records share the quasi-identifiers with, on the columns they share, nor equals a
    record of a reference on every variable (``synth_assets.common.disclosure``). Without
    them, the strict test: ``strict`` references may share no record with the release, and
    no record unique in a ``uniques`` reference may be copied (synthpop's replicated uniques).
    Identifiers (``exclude``) are left out.
    """
    released = pd.concat(
        [pd.read_parquet(p) for p in sorted(release_path.glob("fictitious_population_r*.parquet"))],
        ignore_index=True,
    )
    outcome: dict[str, Any] = {"released_records": len(released), "references": {}}
    passed = True
    known = {c for reference in [*strict.values(), *uniques.values()] for c in reference.columns}
    variables = [c for c in released.columns if c in known and c not in exclude]
    for kind, references in (("exact copies", strict), ("replicated uniques", uniques)):
        for name, reference in references.items():
            shared = [c for c in released.columns if c in reference.columns and c not in exclude]
            if not shared:
                continue
            syn, ref = row_hashes([released[shared], reference[shared]], shared)
            copies = int(pd.Series(syn).isin(set(ref)).sum())
            if k is not None:
                found = disclosive_copies(released[variables], reference, variables, quasi_identifiers, k)
                failed = int(sum(found.values()))
                passed &= failed == 0
                outcome["references"][name] = {
                    "test": f"disclosure filters (k = {k})", "released records equal to one of its records": copies,
                    "replicated rare records": found.get("replicated rare record", 0),
                    "full copies": found.get("full copy", 0), "passed": failed == 0, "columns": ", ".join(shared),
                }
                continue
            unique = int(replicated_uniques(released[shared], reference[shared])["n_replicated"])
            failed = copies if kind == "exact copies" else unique
            passed &= failed == 0
            outcome["references"][name] = {
                "test": kind, "released records equal to one of its records": copies,
                "its unique records replicated": unique, "passed": failed == 0, "columns": ", ".join(shared),
            }
    outcome["passed"] = passed
    return outcome


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;font-size:.9em;text-align:left;vertical-align:top}
.passed{color:#176e2c}.failed{color:#b00020}"""


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_short(v))}</td>" for v in row.values()) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) < 300 else text[:297] + "..."


def render_html(lineage: Lineage) -> str:
    verdict = lineage.copy_test.get("passed")
    badge = "PASSED" if verdict else "FAILED"
    steps = [
        {"asset": s.asset, "partition": s.partition, "run": s.run_id, "code version": s.code_version,
         "when (UTC)": datetime.fromtimestamp(s.timestamp, UTC).isoformat(timespec="seconds")}
        for s in lineage.steps
    ]
    checks = [
        {"asset": c.asset, "check": c.check, "partition": c.partition,
         "result": {True: "passed", False: "FAILED", None: "not evaluated"}[c.passed], "run": c.run_id,
         "detail": c.description or ""}
        for c in lineage.checks
    ]
    sources = [{"source": k, **v} for k, v in lineage.sources.items()]
    copies = [{"compared with": k, **v} for k, v in lineage.copy_test.get("references", {}).items()]
    files = [{"file": k, **v} for k, v in lineage.files.items()]
    body = f"""<h1>Lineage of release {html.escape(lineage.release)}</h1>
<p>Wave {html.escape(lineage.wave)}, created {html.escape(lineage.created_utc)}, at <code>{html.escape(lineage.release_path)}</code>.</p>
<h2>No raw or matched record in the release: <span class="{badge.lower()}">{badge}</span></h2>
<p>{lineage.copy_test.get('released_records', 0):,} released records compared, on the variables they share, with the
matched dataset, every survey file and the register, by the gate's disclosure filters: no released record may
reproduce a real record that fewer than k records share the quasi-identifiers with (replicated rare records), nor
equal a real record on every variable. Equality on a common profile (coarse categories, zero incomes) is counted
but discloses nobody.</p>{_table(copies)}
<h2>Delivered files</h2>{_table(sources)}
<h2>Assets that made the release</h2>{_table(steps)}
<h2>Checks</h2>{_table(checks)}
<h2>Model</h2>{_table([{"parameter": k, "value": v} for k, v in lineage.model.items()])}
<h2>Released files (checksums recomputed)</h2>{_table(files)}"""
    return html_document(f"Lineage of release {lineage.release}", body, css=_CSS)


def write_lineage(lineage: Lineage, output_dir: Path | str) -> tuple[Path, Path]:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = output_dir / "lineage.json", output_dir / "lineage.html"
    write_text(json_path, json.dumps(lineage.to_dict(), indent=2, default=str))
    write_text(html_path, render_html(lineage))
    return json_path, html_path
