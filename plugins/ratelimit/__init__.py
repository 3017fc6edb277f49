"""Rate limits per key, tier and route, per address on public routes, and a
lockout for addresses that keep presenting wrong credentials."""

from __future__ import annotations

from mlflow_hokusai import signals
from mlflow_hokusai.plugins.health import checks
from mlflow_hokusai.plugins.ratelimit.limiter import Limiter
from mlflow_hokusai.plugins.ratelimit.policy import with_group


def init_app(flask_app, hokusai) -> None:
    hokusai.routes.refiners.append(with_group)
    if not hokusai.settings.rate_limits_enabled:
        return
    limiter = hokusai.limiter = Limiter(hokusai.settings)
    pipeline = hokusai.pipeline
    pipeline.add(limiter.run_in_thread, order=-15)
    pipeline.add(limiter.check_public, order=-14)
    pipeline.add(limiter.check_lockout, order=-5)
    pipeline.add(limiter.check_key, order=10)
    pipeline.on_refusal(limiter.count_failure)
    hokusai.connect(signals.key_verified, limiter.mark_known, sender=hokusai.gate)
    hokusai.services["redis"] = limiter.service_state
    if limiter.external:
        # Without its storage a fail-closed server cannot serve: then it is critical.
        hokusai.health_checks.append(
            checks.Check("redis", limiter.ping, critical=not limiter.fail_open))
