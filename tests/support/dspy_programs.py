"""DSPy programs for the tests, deterministic and offline: each carries a
DummyLM (DSPy's own fake LM) in the settings it is logged with, or none at
all (it then calls the server's LM). This module is pickled by value, so the
programs' sandboxed processes need not import the tests package."""

from __future__ import annotations

import sys
import time

import cloudpickle
import dspy
from dspy.utils import DummyLM

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Capital(dspy.Signature):
    """Name the capital city of a country."""

    country: str = dspy.InputField(desc="a country")
    capital: str = dspy.OutputField(desc="its capital city")


class Arithmetic(dspy.Signature):
    """Add two whole numbers."""

    a: int = dspy.InputField()
    b: int = dspy.InputField()
    total: int = dspy.OutputField()


class Failing(dspy.Module):
    """A program whose code raises."""

    def __init__(self):
        super().__init__()
        self.predict = dspy.Predict(Capital)

    def forward(self, country):
        raise ValueError(f"no capital for {country}")


class Sleeping(dspy.Module):
    """A program that runs far longer than any time limit."""

    def __init__(self):
        super().__init__()
        self.predict = dspy.Predict(Capital)

    def forward(self, country):
        time.sleep(600)
        return self.predict(country=country)


def lm(answers: list[dict]) -> DummyLM:
    return DummyLM(answers * 200)


def predict(capital: str = "Paris"):
    return dspy.Predict(Capital), lm([{"capital": capital}])


def chain_of_thought():
    return dspy.ChainOfThought(Arithmetic), lm([{"reasoning": "2 plus 2 is 4", "total": "4"}])


def failing():
    return Failing(), lm([{"capital": "x"}])


def sleeping():
    return Sleeping(), lm([{"capital": "x"}])


def save(program_and_lm, path) -> None:
    """mlflow.dspy.save_model with the program's LM as the logged settings."""
    import mlflow.dspy

    program, model = program_and_lm
    with dspy.context(lm=model):
        mlflow.dspy.save_model(program, str(path), pip_requirements=[])


def log(program_and_lm, registered_model_name: str):
    """mlflow.dspy.log_model through the active MLflow client, registered."""
    import mlflow.dspy

    program, model = program_and_lm
    with dspy.context(lm=model):
        return mlflow.dspy.log_model(program, name="program", pip_requirements=[],
                                     registered_model_name=registered_model_name)
