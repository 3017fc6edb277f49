"""A client of Hokusai's model management API with a key of its own."""

from tests.support.callers import Http


class Api(Http):
    """Requests to one server with one key; ``prefix`` is "/api" or ""."""

    def __init__(self, server, scopes="read,write", prefix="/api", owner=None):
        super().__init__(server.url + prefix, {"X-API-Key": server.create_key(scopes, owner=owner)})
        self.server = server
        self.prefix = prefix
