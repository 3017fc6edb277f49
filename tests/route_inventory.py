"""Print every route the hokusai app serves, as JSON, built the way a server
worker builds it. Run in a subprocess with the server's environment."""

import json
import sys


def main():
    from mlflow.server import app as flask_app

    from mlflow_hokusai.app import create_app
    from mlflow_hokusai.routes import fastapi_routes, flask_routes

    built = create_app()
    if "--unclassified" in sys.argv:  # routes the route table cannot judge
        table = flask_app.extensions["hokusai"].routes
        json.dump(sorted({(r.method, r.template, r.key) for r in table.unclassified()}),
                  sys.stdout)
        return
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
    json.dump(routes, sys.stdout)


if __name__ == "__main__":
    main()
