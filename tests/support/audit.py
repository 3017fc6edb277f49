"""The audit trail as an admin reads it (GET /api/audit)."""

import time

import requests


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def audit(server, **params):
    answer = requests.get(f"{server.url}/api/audit", params=params,
                          headers=bearer(server.admin_key), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_for(server, count=1, **params):
    """Records are written by each worker's background thread: poll briefly."""
    deadline = time.monotonic() + 15
    while True:
        records = audit(server, **params)["records"]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.1)
