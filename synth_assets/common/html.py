"""Pieces of the self-contained HTML reports: a page, a table, an embedded image.

Every report (validation, model comparison, matching diagnostics, release lineage) opens
from a file share or an e-mail attachment with no network and no JavaScript: CSS inline,
figures embedded as base64 PNG.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1 .pass{color:#1a7f37}h1 .fail{color:#cf222e}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.fail td{background:#ffebe9}tr.pass td.v{background:#dafbe1}
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid img{border:1px solid #ddd}
.note{color:#555;font-size:0.9em}
"""


def format_value(value: object) -> str:
    """A cell as plain text: numbers to 4 significant digits, yes/no, "–" for missing."""
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return "–"
        return f"{value:.4g}"
    return str(value)


def html_value(value: object) -> str:
    """:func:`format_value`, escaped for HTML."""
    return html.escape(format_value(value))


def html_table(frame: pd.DataFrame, left: Iterable[str] = ()) -> str:
    """A table with numbers to 4 significant digits, right-aligned except the ``left`` (text) columns."""
    left = set(left)
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{html_value(v)}</td>' for c, v in zip(frame.columns, record)
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def html_image(png: bytes, alt: str) -> str:
    """A PNG embedded as base64, so the page needs no file beside it."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def html_document(title: str, body: str, css: str = CSS) -> str:
    """A self-contained page: inline CSS, no scripts, nothing fetched when opened."""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{css}</style></head><body>\n{body}\n</body></html>\n"
    )
