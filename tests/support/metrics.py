"""A server's Prometheus samples, and how much one moved between two scrapes."""

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(server, headers=None) -> dict[tuple, float]:
    text = requests.get(server.url + "/metrics", headers=headers, timeout=30).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before, after, name, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
