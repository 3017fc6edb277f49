"""Print every route the hokusai app serves and those its route table cannot
judge, as JSON, built the way a server worker builds it (or with --rest, the
documented REST routes only). Run in a subprocess with the server's environment
(``inventory``)."""

import json
import os
import subprocess
import sys


def inventory(server, *flags):
    """What this script prints, building the app in a subprocess exactly as a
    worker of ``server`` does. Isolated (-I): neither the working directory nor
    this folder comes first on its path, so it imports the installed package, as
    the server does, even where a checkout's mlflow_hokusai/ (no plugins/) is
    the working directory."""
    env = {**os.environ, **server.server.env, "_MLFLOW_SGI_NAME": server.server.server,
           "_MLFLOW_SERVER_FILE_STORE": server.server.backend_uri,
           "HOKUSAI_DATABASE_URI": server.database_uri}
    out = subprocess.run([sys.executable, "-I", os.path.abspath(__file__), *flags], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    from mlflow.server import app as flask_app

    from mlflow_hokusai.app import create_app
    from mlflow_hokusai.routes import fastapi_routes, flask_routes

    built = create_app()
    if "--rest" in sys.argv:  # only the routes of RestBlueprints (documented in OpenAPI)
        from mlflow_hokusai.rest.blueprint import rest_blueprints

        names = {bp.name for bp in rest_blueprints(flask_app)}
        json.dump([(sorted(rule.methods - {"HEAD", "OPTIONS"}), rule.rule)
                   for rule in flask_app.url_map.iter_rules()
                   if rule.endpoint.split(".")[0] in names], sys.stdout)
        return
    routes = [(sorted(methods), path) for methods, path in flask_routes(flask_app)]
    if hasattr(built, "pipeline"):  # the ASGI adapter around FastAPI
        routes += [(sorted(methods), path) for methods, path, _ in fastapi_routes(
            built.app.router.routes)]
    # Routes the route table cannot judge, from the same build (one app build,
    # which costs seconds of imports, serves both tests of test_route_coverage).
    table = flask_app.extensions["hokusai"].routes
    unclassified = sorted({(r.method, r.template, r.key) for r in table.unclassified()})
    json.dump({"served": routes, "unclassified": unclassified}, sys.stdout)


if __name__ == "__main__":
    main()
