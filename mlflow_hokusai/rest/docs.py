"""``/docs``: the OpenAPI document in Swagger UI, from the files the
``swagger-ui-py`` package installs (Swagger UI 5, which reads OpenAPI 3.1), so
the page works on a server without internet. The page's own script is a file
too (no inline script), and it asks only for ``/api/openapi.json``."""

from __future__ import annotations

import importlib.resources
import pathlib

import flask

DOCS_PATH = "/docs"
_STATIC = DOCS_PATH + "/static/"
# Swagger UI's files the page loads, each served (and public) by its exact path.
_SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
_OWN_FILES = {"hokusai-docs.js": pathlib.Path(__file__).parent / "static" / "hokusai-docs.js"}

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Hokusai API</title>
<link rel="stylesheet" href="{static}swagger-ui.css">
<link rel="icon" type="image/png" href="{static}favicon-32x32.png"></head>
<body><div id="swagger-ui" data-spec="/api/openapi.json"></div>
<script src="{static}swagger-ui-bundle.js"></script>
<script src="{static}hokusai-docs.js"></script></body></html>
"""


def _swagger_dir():
    return importlib.resources.files("swagger_ui") / "static"


def page():
    return flask.Response(_PAGE.format(static=_STATIC), mimetype="text/html")


def static_file(filename: str):
    if filename in _OWN_FILES:
        path = _OWN_FILES[filename]
    elif filename in _SWAGGER_FILES:
        path = _swagger_dir() / filename
    else:
        flask.abort(404)
    with importlib.resources.as_file(path) as real:
        return flask.send_file(real, max_age=3600)


def init_app(flask_app: flask.Flask) -> list[str]:
    """Serve the page and its files; returns their paths (public like the document)."""
    flask_app.add_url_rule(DOCS_PATH, endpoint="hokusai_docs", view_func=page)
    flask_app.add_url_rule(_STATIC + "<filename>", endpoint="hokusai_docs_static",
                           view_func=static_file)
    return [DOCS_PATH, *(_STATIC + name for name in (*_SWAGGER_FILES, *_OWN_FILES))]
