"""Request bodies over HOKUSAI_MAX_REQUEST_BODY_MB (16 MiB on the shared servers)
are refused with a 413 JSON answer before they are read, declared or chunked,
under uvicorn and gunicorn; no request takes a worker down; the streaming
artifact upload is exempt."""

import json
import socket
import uuid

import psutil
import requests

LIMIT = 16 * 2**20
SEARCH = "/api/2.0/mlflow/runs/search"


def workers(server) -> set[int]:
    return {child.pid for child in psutil.Process(server.server.process.pid).children(True)}


def exchange(server, head: bytes, body_parts=()) -> tuple[int, dict]:
    """Send a request by hand (the body may stop short of what it declares) and
    read the answer."""
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=60) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        answer = b""
        while data := sock.recv(65536):  # both servers close after refusing
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.split(b"\r\n\r\n", 1)[1])


def head(server, key, extra: str) -> bytes:
    return (f"POST {SEARCH} HTTP/1.1\r\nHost: 127.0.0.1:{server.server.port}\r\n"
            f"X-API-Key: {key}\r\nContent-Type: application/json\r\n{extra}\r\n").encode()


def test_declared_large_body_is_refused_unread(each_server_kind):
    server = each_server_kind
    key = server.create_key("read")
    before = workers(server)
    status, body = exchange(server, head(server, key, f"Content-Length: {100 * 2**20}\r\n"))
    assert status == 413 and "HOKUSAI_MAX_REQUEST_BODY_MB" in body["detail"]
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert workers(server) == before
    ok = requests.post(server.url + SEARCH, json={"experiment_ids": ["0"]},
                       headers={"X-API-Key": key}, timeout=30)
    assert ok.status_code == 200


def test_chunked_body_is_counted_as_it_streams(each_server_kind):
    server = each_server_kind
    key = server.create_key("read")
    before = workers(server)
    chunk = b"x" * 2**20
    frames = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 16 + [b"400\r\n" + b"y" * 1024 + b"\r\n"]
    # No closing chunk: the server must answer once it has more than the limit.
    status, body = exchange(server, head(server, key, "Transfer-Encoding: chunked\r\n"), frames)
    assert status == 413 and "HOKUSAI_MAX_REQUEST_BODY_MB" in body["detail"]
    assert workers(server) == before
    # A chunked body within the limit still reaches MLflow (requests sends an
    # iterator chunked).
    small = json.dumps({"experiment_ids": ["0"], "max_results": 1}).encode()
    ok = requests.post(server.url + SEARCH, data=iter([small[:10], small[10:]]),
                       headers={"X-API-Key": key, "Content-Type": "application/json"},
                       timeout=30)
    assert (ok.status_code == 200 and "runs" in ok.json()) or ok.json() == {}


def test_streamed_artifact_upload_is_exempt(uvicorn_sqlite):
    key = uvicorn_sqlite.create_key("read,write")
    # Under an experiment of the key's own: a path under none is only READ for non-admins.
    experiment = requests.post(uvicorn_sqlite.url + "/api/2.0/mlflow/experiments/create",
                               json={"name": f"bodies-{uuid.uuid4().hex[:8]}"},
                               headers={"X-API-Key": key}, timeout=30).json()["experiment_id"]
    url = f"{uvicorn_sqlite.url}/api/2.0/mlflow-artifacts/artifacts/{experiment}/big.bin"
    data = b"z" * (LIMIT + 2**20)
    assert requests.put(url, data=data, headers={"X-API-Key": key}, timeout=120).status_code == 200
    got = requests.get(url, headers={"X-API-Key": key}, timeout=120)
    assert got.status_code == 200 and len(got.content) == len(data)
