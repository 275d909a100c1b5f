"""Executors run fleet jobs: a local process pool by default, or Ray (optional
extra `modeltrust[ray]`, imported only here) on a local or remote cluster.
Both yield results as jobs finish, in any order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import ConfigError
from .work import FleetJob, FleetSettings, vet_target


def run_local(jobs: list[FleetJob], settings: FleetSettings, workers: int) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        for job in jobs:
            yield vet_target(job, settings)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: workers must not inherit the parent's threads (progress bar, hub client).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(vet_target, job, settings) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def run_ray(
    jobs: list[FleetJob], settings: FleetSettings, workers: int, address: str | None
) -> Iterator[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray", hint="pip install 'modeltrust[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - Ray raises many types; each is one line for the user
            where = address or "a local cluster"
            raise ConfigError(f"cannot start or reach Ray ({where}): {exc}") from None
    try:
        remote = ray.remote(num_cpus=1)(vet_target)
        pending = [remote.remote(job, settings) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()
