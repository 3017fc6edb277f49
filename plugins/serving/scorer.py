"""What a model worker computes for one call: predictions through MLflow's
pyfunc (its schema enforcement included), class probabilities when the
underlying model has ``predict_proba``, and SHAP contributions.

Runs in the worker process only (it calls the model). The SHAP explainer is
built once, when the worker starts, on the deployment's background data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

BACKGROUND_ROWS = 100  # rows of background data kept (shap's own advice: 50-1000)


class NoBackground(Exception):
    """Explanations were asked of a deployment without background data."""


def _raw_model(model):
    try:
        return model.get_raw_model()
    except Exception:  # noqa: BLE001 - a flavor without one (a custom python_model)
        return None


def jsonable(values) -> list:
    if isinstance(values, pd.DataFrame):
        return values.to_dict(orient="records")
    if isinstance(values, (pd.Series, np.ndarray)):
        return np.asarray(values).tolist()
    return list(values)


def _number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _matrix(frame: pd.DataFrame) -> np.ndarray:
    # Always C-ordered: shap's compiled kernels are specialised on the layout,
    # and a DataFrame's own is column-major (a second compile on the first call).
    return np.ascontiguousarray(frame.to_numpy(dtype=float))


class Scorer:
    def __init__(self, model, background: pd.DataFrame | None = None):
        self.model = model
        schema = model.metadata.get_input_schema()
        self.columns = schema.input_names() if schema is not None and schema.has_input_names() \
            else None
        self._wanted = frozenset(self.columns or ())
        self._index = pd.Index(self.columns) if self.columns else None
        raw = _raw_model(model)
        self.raw = raw if hasattr(raw, "predict") else None
        self.proba = getattr(self.raw, "predict_proba", None)
        self.classes = [c.item() if hasattr(c, "item") else c
                        for c in getattr(self.raw, "classes_", [])]
        self.explainer = self._explainer(background) if background is not None else None

    def frame(self, records) -> pd.DataFrame:
        columns = self.columns
        if columns and all(isinstance(r, dict) and r.keys() >= self._wanted for r in records):
            # The same frame as below, built from rows in the signature's order:
            # ``from_records`` then a column selection cost the worker about ten
            # times as much for one record (a copy, the names inferred twice).
            return pd.DataFrame([[r[name] for name in columns] for r in records],
                                columns=self._index)
        frame = pd.DataFrame.from_records(records)  # records missing a column, or not dicts
        return frame[columns] if columns else frame

    def _output(self, array) -> np.ndarray:
        """The model output SHAP explains: class probabilities of a classifier,
        else the prediction."""
        frame = pd.DataFrame(array, columns=self.columns)
        if self.proba is not None:
            return np.asarray(self.proba(frame), dtype=float)
        predict = self.raw.predict if self.raw is not None else self.model.predict
        return np.asarray(predict(frame), dtype=float).reshape(len(frame), -1).squeeze(-1)

    def _explainer(self, background: pd.DataFrame):
        import shap

        background = background[self.columns] if self.columns else background
        if len(background) > BACKGROUND_ROWS:
            background = background.sample(BACKGROUND_ROWS, random_state=0)
        data = _matrix(background)
        explainer = shap.Explainer(self._output, data, feature_names=list(background.columns))
        explainer(data[:1])  # compiles shap's kernels now, not in the first call's time
        return explainer

    def predict(self, records: list[dict], probabilities: bool, explain: bool) -> dict:
        frame = self.frame(records)
        result = {"predictions": jsonable(self.model.predict(frame)), "classes": None,
                  "probabilities": None, "explanations": None}
        proba = None
        if (probabilities or explain) and self.proba is not None:
            proba = np.asarray(self.proba(frame), dtype=float)
            result["classes"] = self.classes
            if probabilities:
                result["probabilities"] = [[_number(p) for p in row] for row in proba]
        if explain:
            result["explanations"] = self.explain(frame, proba)
        return result

    def explain(self, frame: pd.DataFrame, proba) -> list[dict]:
        if self.explainer is None:
            raise NoBackground("This deployment has no background data for SHAP: attach a "
                               "reference_dataset or log the training data as a run input")
        explanation = self.explainer(_matrix(frame))
        names = list(frame.columns)
        out = []
        for row in range(len(frame)):
            values, base = explanation.values[row], explanation.base_values[row]
            item: dict[str, Any] = {"method": "shap"}
            if proba is not None:  # explain the predicted class's probability
                k = int(np.argmax(proba[row]))
                values, base = values[:, k], base[k]
                item["class"] = self.classes[k] if self.classes else k
            contributions = {name: float(v) for name, v in zip(names, values, strict=False)}
            item.update(feature_importance=contributions, base_value=float(base),
                        output_value=float(base) + float(np.sum(values)))
            out.append(item)
        return out
