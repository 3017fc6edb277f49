"""A pyfunc model whose prediction kills its own process, as a native crash
or a hostile pickle would."""

import os

import mlflow
from mlflow.pyfunc import PythonModel


class Crash(PythonModel):
    def predict(self, context, model_input, params=None):
        os._exit(3)


mlflow.models.set_model(Crash())
