"""A client of Hokusai's model management API with a key of its own."""

import requests


class Api:
    """Requests to one server with one key; ``prefix`` is "/api" or ""."""

    def __init__(self, server, scopes="read,write", prefix="/api", owner=None):
        self.server = server
        self.headers = {"X-API-Key": server.create_key(scopes, owner=owner)}
        self.prefix = prefix

    def __call__(self, method, path, **kwargs):
        return requests.request(method, self.server.url + self.prefix + path,
                                headers=self.headers, timeout=60, **kwargs)
