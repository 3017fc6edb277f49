"""Unit tests of the artifact plugin's path safety, URI parsing, root finding and
verified copies (the through-server checks are in test_artifacts_server.py)."""

import io
import os

import pytest
from mlflow.exceptions import MlflowException

from mlflow_hokusai.plugins.artifacts import file_repository, locations, paths
from mlflow_hokusai.plugins.artifacts.blobs import Blob, copy_verified
from mlflow_hokusai.plugins.artifacts.errors import CorruptArtifact


@pytest.mark.parametrize("given,expected", [
    (None, ""), ("", ""), ("a", "a"), ("a/b/c.txt", "a/b/c.txt"), ("a//b/./c", "a/b/c"),
    ("a/", "a"), ("100%.txt", "100%.txt"), ("name%2520with%2520spaces", "name%2520with%2520spaces"),
    ("..hidden", "..hidden"), ("a..b", "a..b"), ("é/ü.bin", "é/ü.bin"),
])
def test_clean_accepts_ordinary_paths(given, expected):
    assert paths.clean(given) == expected


@pytest.mark.parametrize("path", [
    "..", "../x", "a/../../x", "a/..", "/etc/passwd", "//etc/passwd", "C:/x", "c:x",
    "%2e%2e/x", "%2E%2E/x", "%252e%252e/x", "%25252e%25252e/x", "..%2fx", "..%252fx",
    "%2fetc%2fpasswd", "%252fetc", "a\\b", "..\\x", "%5c..%5cx", "%255c", "a\x00b", "a%00b",
    "a%2500b", "a\nb", ".hokusai", "a/.hokusai/blobs", ".hokusai-tmp-1", "%2ehokusai/x",
])
def test_clean_refuses_traversal_in_every_encoding(path):
    with pytest.raises(paths.UnsafePath):
        paths.clean(path)


@pytest.mark.parametrize("uri,scheme,base", [
    ("hokusai+file:///data/artifacts", "hokusai+file", "/data/artifacts"),
    ("hokusai+file://localhost/data/", "hokusai+file", "/data"),
    ("hokusai+file:///", "hokusai+file", "/"),
    ("hokusai+s3://bucket", "hokusai+s3", "bucket"),
    ("hokusai+s3://bucket/a/b/", "hokusai+s3", "bucket/a/b"),
])
def test_parse(uri, scheme, base):
    location = locations.parse(uri)
    assert (location.scheme, location.base) == (scheme, base)
    assert locations.parse(location.uri()) == location


@pytest.mark.parametrize("uri", [
    "hokusai+file://host/data", "hokusai+file:relative", "hokusai+file:///a/../b",
    "hokusai+s3:///prefix", "hokusai+s3://b/%2e%2e/x", "hokusai+s3://b/p?x=1",
    "hokusai+file:///a#frag", "s3://bucket",
])
def test_parse_refuses(uri):
    with pytest.raises(locations.InvalidLocation):
        locations.parse(uri)


def test_root_is_the_nearest_marked_ancestor(tmp_path):
    (tmp_path / "store" / ".hokusai").mkdir(parents=True)
    below = locations.parse(f"hokusai+file://{tmp_path}/store/1/run/artifacts")
    marked = lambda d: os.path.isdir(os.path.join(d, ".hokusai"))  # noqa: E731
    assert locations.find_root(below, marked, environ={}) == f"{tmp_path}/store"
    unmarked = locations.parse(f"hokusai+file://{tmp_path}/other/x")
    assert locations.find_root(unmarked, marked, environ={}) == f"{tmp_path}/other/x"


def test_server_process_refuses_locations_outside_its_roots():
    environ = {"_MLFLOW_SERVER_ARTIFACT_ROOT": "mlflow-artifacts:/",
               "_MLFLOW_SERVER_ARTIFACT_DESTINATION": "hokusai+s3://bucket/store"}
    never = lambda base: False  # noqa: E731
    inside = locations.parse("hokusai+s3://bucket/store/1/r/artifacts")
    assert locations.find_root(inside, never, environ) == "bucket/store"
    for outside in ("hokusai+s3://bucket/storex", "hokusai+s3://other/store",
                    "hokusai+file:///bucket/store"):
        with pytest.raises(locations.InvalidLocation, match="outside"):
            locations.find_root(locations.parse(outside), never, environ)


def test_copy_verified_removes_what_it_wrote(tmp_path):
    target = tmp_path / "out"
    good = Blob("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", 5)
    copy_verified([b"hel", b"lo"], good, str(target))
    assert target.read_bytes() == b"hello"
    for chunks in ([b"hellO"], [b"hell"], [b"hello", b"!"]):
        with pytest.raises(CorruptArtifact):
            copy_verified(chunks, good, str(target))
        assert not target.exists()


def test_symlinks_never_lead_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text('{"sha256": "' + "0" * 64 + '", "size": 1}')
    store = tmp_path / "store"
    repository = file_repository(f"hokusai+file://{store}")
    repository.log_artifact_from_stream(io.BytesIO(b"inside"), "ok.txt")
    (store / "dir-link").symlink_to(outside)
    (store / "file-link.txt").symlink_to(outside / "secret.txt")

    with pytest.raises(MlflowException, match="outside the repository") as refused:
        repository.log_artifact_from_stream(io.BytesIO(b"x"), "planted.txt", "dir-link")
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert not (outside / "planted.txt").exists()
    for path in ("dir-link/secret.txt", "file-link.txt"):
        with pytest.raises(MlflowException):
            repository._download_file(path, str(tmp_path / "down"))
    assert repository.list_artifacts("dir-link") == []
    assert [f.path for f in repository.list_artifacts()] == ["ok.txt"]
    repository.delete_artifacts("dir-link")
    assert (outside / "secret.txt").exists()
