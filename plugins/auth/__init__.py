"""API-key authentication: the deny-by-default gate, the key store and ``/api/keys``.

The ``hokusai`` CLI imports the key store from this package; the plugin's wiring
(``wiring.py``) pulls in Flask and MLflow, so it loads only when an app installs
the plugin, and a CLI call starts about a second sooner.
"""


def init_app(flask_app, hokusai) -> None:
    from mlflow_hokusai.plugins.auth.wiring import init_app as install

    install(flask_app, hokusai)
