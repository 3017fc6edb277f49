"""The circuit breaker counts only failures that say the database is unreachable
or unavailable: a statement the caller's own input makes the database refuse
must not count, or any key holder could open the breaker for everyone."""

import threading

import pytest
import sqlalchemy

from mlflow_hokusai.plugins.health import breaker as breaker_module
from mlflow_hokusai.plugins.health.breaker import CLOSED, OPEN, CircuitBreaker, watch_sqlalchemy


@pytest.fixture
def watched():
    """A breaker fed by every engine, as in a worker; the listeners go after."""
    breaker = CircuitBreaker(3, 60.0, 1)
    unwatch = watch_sqlalchemy(breaker)
    yield breaker
    unwatch()


def in_list(count: int) -> tuple[str, dict]:
    return ("SELECT 1 WHERE 1 IN (" + ",".join(f":p{i}" for i in range(count)) + ")",
            {f"p{i}": i for i in range(count)})


def fail(engine, statement, params=None):
    with pytest.raises(sqlalchemy.exc.DBAPIError), engine.connect() as conn:
        conn.execute(sqlalchemy.text(statement), params)


def joins(count: int) -> str:
    return "SELECT 1 FROM t AS t0 " + " ".join(
        f"JOIN t AS t{i} ON t{i}.x = t0.x" for i in range(1, count + 1))


def test_sqlite_statement_errors_do_not_count(watched, tmp_path):
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE t (x INTEGER)"))
    deep = "SELECT " + "(" * 1200 + "1" + ")" * 1200
    for _ in range(10):
        fail(engine, joins(70))  # at most 64 tables in a join
        fail(engine, deep)  # parser stack overflow / expression tree too large
    assert watched.state == CLOSED and watched.failure_count == 0


def test_unreachable_sqlite_counts(watched, tmp_path):
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    for _ in range(3):
        fail(engine, "SELECT 1")  # unable to open database file
    assert watched.state == OPEN


def test_postgres_too_many_parameters_does_not_count(watched, make_postgres_database):
    engine = sqlalchemy.create_engine(
        make_postgres_database().replace("postgresql://", "postgresql+psycopg://", 1))
    for _ in range(5):
        fail(engine, *in_list(70000))
        fail(engine, "SELECT 1/0")  # division by zero: the statement's own
    assert watched.state == CLOSED and watched.failure_count == 0
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT 1"))
    engine.dispose()


def test_refused_postgres_connection_counts(watched):
    from tests.support.servers import free_port

    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x",
        connect_args={"connect_timeout": 2})
    for _ in range(3):
        with pytest.raises(sqlalchemy.exc.OperationalError):
            engine.connect()
    assert watched.state == OPEN


@pytest.mark.parametrize("name", [*sorted(breaker_module.BACKGROUND_THREADS), "hokusai-batch-1f"])
def test_background_threads_are_not_reported(watched, tmp_path, name):
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    errors = []

    def write():
        for _ in range(5):
            try:
                engine.connect()
            except sqlalchemy.exc.OperationalError as exc:
                errors.append(exc)

    thread = threading.Thread(target=write, name=name)
    thread.start()
    thread.join()
    assert len(errors) == 5 and watched.failure_count == 0


def test_background_threads_have_the_ignored_names():
    import inspect

    from mlflow_hokusai.plugins.audit import recorder
    from mlflow_hokusai.plugins.monitoring import outcomes
    from mlflow_hokusai.plugins.serving import batch, predictlog, supervisor

    sources = {"hokusai-audit": recorder, "hokusai-serving": supervisor,
               "hokusai-prediction-log": predictlog, "hokusai-monitoring": outcomes}
    assert set(sources) == breaker_module.BACKGROUND_THREADS
    for name, module in sources.items():
        # Threads named where they start, or by the name their Flusher is given.
        assert f'name="{name}"' in inspect.getsource(module) or \
            f'"{name}")' in inspect.getsource(module) or \
            f'THREAD_NAME = "{name}"' in inspect.getsource(module), name
    assert 'name=f"hokusai-batch-' in inspect.getsource(batch)
    assert breaker_module.BACKGROUND_THREAD_PREFIXES == ("hokusai-batch-",)


def test_a_request_thread_is_reported(watched, tmp_path):
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")

    def request():
        with pytest.raises(sqlalchemy.exc.OperationalError):
            engine.connect()

    thread = threading.Thread(target=request, name="AnyIO worker thread")
    thread.start()
    thread.join()
    assert watched.failure_count == 1


@pytest.mark.parametrize("message, counts", [
    ("connection to server at \"db\" (10.0.0.1), port 5432 failed: Connection refused", True),
    ("connection failed: timeout expired", True),
    ("database is locked", True),
    ("sending query and params failed: number of parameters must be between 0 and 65535",
     False),
    ("Expression tree is too large (maximum depth 1000)", False),
    ("at most 64 tables in a join", False),
])
def test_classification_of_driver_messages(message, counts):
    error = sqlalchemy.exc.OperationalError("SELECT", {}, Exception(message))
    assert breaker_module.is_unavailability(error) is counts
