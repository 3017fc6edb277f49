"""A pyfunc model (MLflow "models from code") for the serving tests: it reports
which environment variables its worker process sees, or sleeps first when
asked to (the time bound)."""

import os
import time

import mlflow
from mlflow.pyfunc import PythonModel

SECRET_MARKERS = ("HOKUSAI", "AWS", "MLFLOW_TRACKING", "DATABASE", "_MLFLOW_SERVER")


class Probe(PythonModel):
    def predict(self, context, model_input, params=None):
        if float(model_input["sleep"].iloc[0]) > 0:
            time.sleep(float(model_input["sleep"].iloc[0]))
        leaked = sorted(n for n in os.environ if any(m in n for m in SECRET_MARKERS))
        return [",".join(leaked) or "clean"] * len(model_input)


mlflow.models.set_model(Probe())
