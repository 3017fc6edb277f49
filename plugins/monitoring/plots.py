"""Pictures of drift: per feature, the reference and current distributions
overlaid (empirical CDFs for numeric features, where the KS statistic is the
largest vertical gap; side-by-side category shares for categorical ones), and
an HTML page with one per feature, its statistic and verdict."""

from __future__ import annotations

import base64
import datetime
import functools
import html
import io
from types import ModuleType

import numpy as np
import pandas as pd

from mlflow_hokusai.plugins.monitoring import stats

MAX_CATEGORIES = 20


@functools.cache
def _pyplot() -> ModuleType:
    """Imported on first use: at import it added 0.9 s to every server worker's
    boot, for pictures few workers ever draw."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server; set before pyplot is imported
    import matplotlib.pyplot

    return matplotlib.pyplot


def _ecdf(axis, values: np.ndarray, label: str) -> None:
    ordered = np.sort(values)
    axis.step(ordered, np.arange(1, len(ordered) + 1) / len(ordered), where="post", label=label)


def _shares(axis, reference: pd.Series, current: pd.Series) -> None:
    table, categories = stats.counts(reference.dropna(), current.dropna())
    shares = table / np.clip(table.sum(axis=1, keepdims=True), 1, None)
    keep = np.argsort(-shares.max(axis=0))[:MAX_CATEGORIES]
    positions = np.arange(len(keep))
    axis.bar(positions - 0.2, shares[0, keep], 0.4, label="reference")
    axis.bar(positions + 0.2, shares[1, keep], 0.4, label="current")
    axis.set_xticks(positions, [categories[i] for i in keep], rotation=45, ha="right")
    axis.set_ylabel("share")


def _title(name: str, result: dict) -> str:
    if result["status"] != "tested":
        return f"{name}: too few samples ({result['current_size']})"
    verdict = "DRIFTED" if result["drifted"] else "no drift"
    p = f", p={result['p_value']:.3g}" if result.get("p_value") is not None else ""
    return f"{name}: {verdict} ({result['method']} {result['statistic']:.3g}{p})"


def png(name: str, reference: pd.Series, current: pd.Series, result: dict,
        categorical: bool) -> bytes:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.6), dpi=90)
    try:
        if categorical:
            _shares(axis, reference, current)
        else:
            for values, label in ((reference, "reference"), (current, "current")):
                numeric = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
                if len(numeric):
                    _ecdf(axis, numeric, f"{label} (n={len(numeric)})")
            axis.set_ylabel("cumulative share")
        axis.set_title(_title(name, result), fontsize=10,
                       color="crimson" if result.get("drifted") else "black")
        axis.legend(fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def _when(millis: int | None) -> str:
    if millis is None:
        return "?"
    moment = datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _window(window: dict) -> str:
    return f"{_when(window.get('since'))} to {_when(window.get('until'))}"


def page(model_name: str, version: int, report: dict, images: dict[str, bytes]) -> str:
    escape = html.escape
    verdict = {True: "Drift detected", False: "No drift",
               None: "Not enough recorded inputs to tell"}[report["overall_drift"]]
    rows, figures = [], []
    for name, result in report["features"].items():
        state = "insufficient data" if result["status"] != "tested" else \
            ("drifted" if result["drifted"] else "ok")
        statistic = "" if result["statistic"] is None else f"{result['statistic']:.4g}"
        p_value = "" if result.get("p_value_adjusted") is None else \
            f"{result['p_value_adjusted']:.4g}"
        rows.append(f"<tr class='{state.split()[0]}'><td>{escape(name)}</td>"
                    f"<td>{escape(result['method'])}</td><td>{statistic}</td><td>{p_value}</td>"
                    f"<td>{result['reference_size']}</td><td>{result['current_size']}</td>"
                    f"<td>{state}</td></tr>")
        encoded = base64.b64encode(images[name]).decode()
        figures.append(f"<figure><img alt='{escape(name)}' src='data:image/png;base64,{encoded}'>"
                       f"</figure>")
    reference = report.get("reference", {})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Drift: {escape(model_name)} v{version}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}} tr.drifted{{background:#fdd}}
tr.insufficient{{background:#eee}} figure{{display:inline-block;margin:8px}}</style>
</head><body>
<h1 id="verdict">{escape(verdict)}: {escape(model_name)} version {version}</h1>
<p>{report['features_drifted']} of {report['features_checked']} features drifted
(method {escape(report['method'])}, threshold {report['threshold']},
correction {escape(str(report['correction']))}); window
{_window(report.get('window', {}))}; {report['current_size']} recorded inputs against
{reference.get('rows')} reference rows from {escape(str(reference.get('source')))}
<code>{escape(str(reference.get('uri')))}</code>
(sha256 {escape(str(reference.get('digest')))}).</p>
<table><tr><th>feature</th><th>method</th><th>statistic</th><th>adjusted p</th>
<th>reference n</th><th>current n</th><th>state</th></tr>
{''.join(rows)}</table>
{''.join(figures)}
</body></html>"""


def feature_png(result, feature: str) -> bytes:
    """The PNG of one feature of a ``drift.Drift``."""
    current = result.current[feature] if feature in result.current.columns else \
        pd.Series([], dtype=float)
    return png(feature, result.reference[feature], current, result.report["features"][feature],
               result.categorical(feature))


def render(result) -> str:
    """The HTML page of a ``drift.Drift``."""
    images = {f: feature_png(result, f) for f in result.report["features"]}
    return page(result.model_name, result.version, result.report, images)
