"""mlflow-hokusai: MLflow server plugins for a secure, multi-user model registry.

Start the server with ``mlflow server --app-name hokusai``; see README.md.
"""

__version__ = "0.1.0"
