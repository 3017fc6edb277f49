"""Hokusai's built-in plugins, installed as ``mlflow_hokusai.plugins``.

Each plugin package exposes ``init_app(flask_app, hokusai)``; the app factory
calls them in order (see mlflow_hokusai.app.BUILTIN_PLUGINS).
"""
