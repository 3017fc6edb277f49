"""Print every route the hokusai app serves, as JSON, built the way a server
worker builds it. Run in a subprocess with the server's environment."""

import json
import sys

from fastapi.routing import _IncludedRouter
from starlette.routing import Mount


def fastapi_routes(routes):
    for route in routes:
        if isinstance(route, _IncludedRouter):
            yield from fastapi_routes(route.effective_candidates())
        elif isinstance(route, Mount):
            continue  # the Flask app, listed from its own URL map
        else:
            yield sorted(route.methods or []), route.path


def main():
    from mlflow.server import app as flask_app

    from mlflow_hokusai.app import create_app

    built = create_app()
    routes = [(sorted(rule.methods), rule.rule) for rule in flask_app.url_map.iter_rules()]
    if hasattr(built, "pipeline"):  # the ASGI adapter around FastAPI
        routes += list(fastapi_routes(built.app.router.routes))
    json.dump(routes, sys.stdout)


if __name__ == "__main__":
    main()
