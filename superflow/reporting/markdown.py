"""Markdown tables from pandas frames without the optional ``tabulate`` dependency."""

from __future__ import annotations

import math

import pandas as pd


def _cell(value, digits: int) -> str:
    if value is pd.NA or value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured markdown table; floats with ``digits`` decimals, NaN as an empty cell."""
    header = [str(c) for c in frame.columns]
    rows = [[_cell(v, digits) for v in row] for row in frame.itertuples(index=False)]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    rule = ["---:" if n else "---" for n in numeric]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
