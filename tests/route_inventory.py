"""Print every route the hokusai app serves, as JSON, built the way a server
worker builds it. Run in a subprocess with the server's environment."""

import json
import sys


def main():
    from mlflow.server import app as flask_app

    from mlflow_hokusai.app import create_app
    from mlflow_hokusai.routes import fastapi_routes, flask_routes

    built = create_app()
    routes = [(sorted(methods), path) for methods, path in flask_routes(flask_app)]
    if hasattr(built, "pipeline"):  # the ASGI adapter around FastAPI
        routes += [(sorted(methods), path) for methods, path, _ in fastapi_routes(
            built.app.router.routes)]
    json.dump(routes, sys.stdout)


if __name__ == "__main__":
    main()
