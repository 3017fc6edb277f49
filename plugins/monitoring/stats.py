"""Two-sample drift statistics, one feature at a time, and the correction of
their p-values for the number of features tested.

Numeric features: the two-sample Kolmogorov-Smirnov test (``scipy.stats.
ks_2samp``). Categorical ones: Pearson's chi-square test of homogeneity on the
reference-vs-current contingency table (``scipy.stats.chi2_contingency``), or
the population stability index. ``method="psi"`` uses the PSI for every feature
(numeric ones binned at the reference's deciles, or by value when the
reference has at most ``PSI_BINS`` distinct ones): it has no p-value, it drifts
when the index exceeds the threshold (0.2 is the usual "significant shift").

Correction: Holm-Bonferroni (step-down) over the features that were tested. It
controls the family-wise error rate like Bonferroni, without Bonferroni's loss
of power, and needs no independence between features (Benjamini-Hochberg's FDR
guarantee does, and "one feature drifted" is the question people ask).
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import cast

import numpy as np
import pandas as pd

KS, CHI2, PSI = "ks", "chi2", "psi"
METHODS = ("auto", PSI)  # auto: KS for numeric features, chi-square for categorical
DEFAULT_THRESHOLD = {"auto": 0.05, PSI: 0.2}  # alpha, or the PSI above which it drifted
PSI_BINS = 10
_PSI_FLOOR = 1e-4  # an empty bin's share: the index is infinite otherwise


@dataclasses.dataclass
class FeatureResult:
    feature: str
    method: str
    reference_size: int
    current_size: int
    statistic: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    drifted: bool | None = None  # None: not tested (too few samples)
    status: str = "tested"  # tested, insufficient_data, missing

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _scipy_stats() -> ModuleType:
    """Imported on first use: at import it added 1.2 s to every server worker's
    boot, for drift checks few workers ever run."""
    from scipy import stats

    return stats


def is_categorical(values: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    result = _scipy_stats().ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def _label(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _labels(values: pd.Series) -> pd.Series:
    """Values as category text, a whole-number float written as the integer it
    is: a reference column with missing values is read as float, and its "1.0"
    must match the "1" of recorded requests (else identical data drifts)."""
    if pd.api.types.is_float_dtype(values):
        text = values.astype(str)
        whole = (values % 1 == 0) & (values.abs() < 2**53)  # exact in an int64
        text[whole] = values[whole].astype("int64").astype(str)
        return text
    return values.map(_label) if values.dtype == object else values.astype(str)


def counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, list]:
    """A 2 x k table of category counts over the categories either side has
    (a category only the current data has is a column with a 0 reference)."""
    ref, cur = _labels(reference).value_counts(), _labels(current).value_counts()
    categories = sorted(set(ref.index) | set(cur.index))
    table = np.array([[ref.get(c, 0) for c in categories], [cur.get(c, 0) for c in categories]])
    return table, categories


def chi2(reference: pd.Series, current: pd.Series) -> tuple[float, float]:
    table, _ = counts(reference, current)
    if table.shape[1] < 2:
        return 0.0, 1.0  # one category on both sides: nothing can differ
    result = _scipy_stats().chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def psi_from_counts(table: np.ndarray) -> float:
    shares = table / table.sum(axis=1, keepdims=True)
    shares = np.clip(shares, _PSI_FLOOR, None)
    expected, actual = shares
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi(reference: pd.Series | np.ndarray, current: pd.Series | np.ndarray,
        categorical: bool) -> float:
    # A numeric feature with few distinct reference values (a 0/1 flag, a
    # constant) has too few distinct deciles to bin by: one or two bins would
    # hold everything whatever the current data does. Its values are its bins.
    if categorical or len(np.unique(reference)) <= PSI_BINS:
        return psi_from_counts(counts(pd.Series(reference), pd.Series(current))[0])
    inner = np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)[1:-1])
    edges = np.r_[-np.inf, np.unique(inner), np.inf]
    table = np.array([np.histogram(reference, edges)[0], np.histogram(current, edges)[0]])
    return psi_from_counts(table)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def _clean(values: pd.Series, categorical: bool):
    values = values.dropna()
    if categorical:
        return values
    return pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)


def feature(name: str, reference: pd.Series, current: pd.Series, method: str,
            categorical: bool, min_samples: int) -> FeatureResult:
    ref, cur = _clean(reference, categorical), _clean(current, categorical)
    chosen = PSI if method == PSI else (CHI2 if categorical else KS)
    result = FeatureResult(name, chosen, len(ref), len(cur))
    if len(cur) < min_samples or len(ref) < min_samples:
        result.status = "insufficient_data"
    elif chosen == KS:
        result.statistic, result.p_value = ks(ref, cur)
    elif chosen == CHI2:
        result.statistic, result.p_value = chi2(ref, cur)
    else:
        result.statistic = psi(ref, cur, categorical)
    return result


def decide(results: list[FeatureResult], method: str, threshold: float) -> None:
    """Set ``drifted`` on the tested results: PSI against the threshold, the
    tests by their Holm-adjusted p-value against it (alpha)."""
    tested = [r for r in results if r.status == "tested"]
    if method == PSI:
        for r in tested:
            assert r.statistic is not None  # a tested feature has one
            r.drifted = r.statistic > threshold
        return
    p_values = cast(list[float], [r.p_value for r in tested])  # a tested feature has one
    for r, adjusted in zip(tested, holm(p_values), strict=True):
        r.p_value_adjusted = adjusted
        r.drifted = adjusted < threshold
