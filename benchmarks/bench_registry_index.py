"""Registry index: lookups with 100 and with 10,000 model versions, and the
write cost of Hokusai's registry store against MLflow's stock store.

    .venv/bin/python -m benchmarks.bench_registry_index [--backend sqlite|postgresql]

Lookups (through plugins/store/reader.py, as the Hokusai endpoints make them):
token (the token, its model and the model's versions), contributor (an
address's contributions) and lineage (a version and its parent chain). The
registry holds models of 10 versions each, every model with a token and a
contributor, so an answer has the same size at both scales: what changes is
how much the database must look through. Target: 10,000/100 ratio <= 2.

Writes: ``create_model_version`` (with benchmark and contributor tags) and
``set_model_version_tag`` (a benchmark value, which recomputes contributions)
on MLflow's stock SqlAlchemyStore and on Hokusai's, each on its own fresh
database of the same kind, taking turns call by call; the ratio is the median
of the rounds' ratios. Target: ratio <= 1.10.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time

from mlflow.entities.model_registry import ModelVersionTag
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
from sqlalchemy.orm import Session

from mlflow_hokusai.plugins.store import reader
from mlflow_hokusai.plugins.store.registry import registry_store_class
from tests.support.databases import postgres_databases

VERSIONS_PER_MODEL = 10
SOURCE = "mlflow-artifacts:/bench/model"


def address(model: int) -> str:
    return "0x" + hashlib.sha256(str(model).encode()).hexdigest()[:40]


def version_tags(model: int, version: int) -> list[ModelVersionTag]:
    return [ModelVersionTag("hokusai_token_id", f"tok-{model}"),
            ModelVersionTag("benchmark_metric", "accuracy"),
            ModelVersionTag("benchmark_value", str(0.5 + version / 100)),
            ModelVersionTag("hokusai_contributor", address(model))]


def fill(store, versions: int) -> None:
    for model in range(versions // VERSIONS_PER_MODEL):
        store.create_registered_model(f"model-{model}")
        for version in range(1, VERSIONS_PER_MODEL + 1):
            store.create_model_version(f"model-{model}", SOURCE, tags=version_tags(model, version))


LOOKUPS = {
    "token": lambda s, m: (reader.token(s, f"tok-{m}"), reader.versions(s, f"model-{m}")),
    "contributor": lambda s, m: reader.contributions(s, address(m)),
    "lineage": lambda s, m: (reader.version(s, f"model-{m}", VERSIONS_PER_MODEL),
                             reader.ancestors(s, f"model-{m}", VERSIONS_PER_MODEL)),
}


def time_lookup(store, lookup, models: int, repeat: int) -> float:
    """Median microseconds of one lookup, spread over the registry's models."""
    timings = []
    with Session(store.engine) as session:
        for i in range(repeat):
            model = (i * 7919) % models
            started = time.perf_counter()
            answer = lookup(session, model)
            timings.append(time.perf_counter() - started)
            assert answer, "a lookup found nothing: the registry was not indexed"
    return statistics.median(timings) * 1e6


def time_writes(stores: dict, rounds: int, per_round: int) -> dict[str, dict[str, list]]:
    """Milliseconds per call of each write, per store and round. The stores take
    turns call by call (who goes first alternates by round), so a slow spell of
    the machine weighs on both alike."""
    writes = ("create_model_version", "set_model_version_tag")
    results = {name: {op: [] for op in writes} for name in stores}
    for store in stores.values():
        store.create_registered_model("writes")
    counts = dict.fromkeys(stores, 0)

    def call(op, name, i):
        store = stores[name]
        if op == "create_model_version":
            counts[name] += 1
            store.create_model_version("writes", SOURCE, tags=version_tags(0, counts[name]))
        else:
            store.set_model_version_tag("writes", str(1 + (i * 31) % counts[name]),
                                        ModelVersionTag("benchmark_value", str(i / 1000)))

    for round_number in range(rounds):
        order = list(stores) if round_number % 2 == 0 else list(reversed(stores))
        for op in writes:
            spent = dict.fromkeys(stores, 0.0)
            for i in range(per_round):
                for name in order:
                    started = time.perf_counter()
                    call(op, name, i)
                    spent[name] += time.perf_counter() - started
            for name in stores:
                results[name][op].append(spent[name] / per_round * 1000)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--per-round", type=int, default=100)
    args = parser.parse_args()
    hokusai_store = registry_store_class()

    with tempfile.TemporaryDirectory() as tmp, postgres_databases("hokusai_bench") as make_db:
        def database(name):
            return f"sqlite:///{tmp}/{name}.db" if args.backend == "sqlite" else make_db()

        scales = {}
        for size in (args.small, args.large):
            started = time.monotonic()
            store = hokusai_store(database(f"registry-{size}"))
            fill(store, size)
            print(f"filled {size} versions in {time.monotonic() - started:.0f} s", flush=True)
            scales[size] = store
        print(f"\nLookups ({args.backend}), median of {args.repeat}:")
        print(f"| lookup | {args.small} versions | {args.large} versions | ratio |")
        print("| --- | --- | --- | --- |")
        for name, lookup in LOOKUPS.items():
            small, large = (time_lookup(scales[size], lookup, size // VERSIONS_PER_MODEL,
                                        args.repeat) for size in (args.small, args.large))
            print(f"| {name} | {small:.0f} µs | {large:.0f} µs | {large / small:.2f} |")

        stores = {"MLflow stock store": SqlAlchemyStore(database("stock")),
                  "Hokusai store": hokusai_store(database("hokusai"))}
        writes = time_writes(stores, args.rounds, args.per_round)
        print(f"\nWrites ({args.backend}), median ms per call over {args.rounds} rounds of "
              f"{args.per_round} calls, the stores taking turns call by call; the ratio is the "
              "median of the rounds' own ratios:")
        print("| call | MLflow stock store | Hokusai store | ratio | rounds' ratios |")
        print("| --- | --- | --- | --- | --- |")
        for op in ("create_model_version", "set_model_version_tag"):
            stock, ours = writes["MLflow stock store"][op], writes["Hokusai store"][op]
            ratios = [o / s for o, s in zip(ours, stock, strict=False)]
            print(f"| {op} | {statistics.median(stock):.2f} ms | "
                  f"{statistics.median(ours):.2f} ms | {statistics.median(ratios):.2f} | "
                  f"{min(ratios):.2f}-{max(ratios):.2f} |")
        for store in (*scales.values(), *stores.values()):
            store.engine.dispose()


if __name__ == "__main__":
    main()
