"""Shared pytest fixtures and helpers for simulated meters (wired into conftest).

- ``sim_fleet``: a factory fixture, one fleet per call, stopped after the test.
- ``fleet_fixture(*configs, ...)``: a fixture of a test module (assign it to a name, usually
  ``fleet = fleet_fixture(...)``): that fleet started once per module (or per ``scope``).
- ``run_job(fleet, serial, job_type, payload)``: one bridge job through
  ``meter_bridge.executors.execute_job`` against a simulated meter over real DLMS (HLS-GMAC
  with its keys unless the test says how to associate).
"""

from __future__ import annotations

import pytest

from meter_sim.fleet import Fleet
from meter_sim.model import MeterConfig
from meter_sim.testing import hls_job_meter, run_cli


@pytest.fixture
def sim_fleet():
    """Factory: sim_fleet(MeterConfig(...), ..., speed=0) -> started Fleet, stopped after."""
    fleets = []

    def make(*configs: MeterConfig, **kwargs) -> Fleet:
        kwargs.setdefault("speed", 0)
        fleet = Fleet(meters=list(configs) or [MeterConfig("SIM00001")], **kwargs)
        fleets.append(fleet)
        return fleet.start()

    try:
        yield make
    finally:
        for f in fleets:
            f.stop()


@pytest.fixture
def sim_cli():
    """Context manager factory around `meter-sim` as a subprocess (see meter_sim.testing)."""
    return run_cli


def fleet_fixture(*configs: MeterConfig, scope="module", prepare=None, **fleet_kw):
    """A fixture yielding a started in-process Fleet of ``configs`` (``speed=0`` unless
    ``fleet_kw`` say otherwise), stopped at the end of ``scope``. ``prepare(fleet)`` runs
    once after the start (e.g. to set the meters' load)."""
    fleet_kw.setdefault("speed", 0)

    @pytest.fixture(scope=scope)
    def _fleet():
        fleet = Fleet(meters=list(configs), **fleet_kw)
        fleet.start()
        try:
            if prepare is not None:
                prepare(fleet)
            yield fleet
        finally:
            fleet.stop()

    return _fleet


def run_job(
    fleet,
    serial,
    job_type,
    payload=None,
    *,
    keep_counter=False,
    deadline_s=20,
    job_kw=None,
    **meter_kw,
) -> dict:
    """Run one ``job_type`` job (id 1) through the bridge's ``execute_job`` against the
    simulated meter ``serial`` of ``fleet``: its job meter is the HLS-GMAC management
    client with the meter's keys (``hls_job_meter``, 3 s timeout), ``meter_kw`` overriding
    its fields; ``job_kw`` adds top-level job fields. Returns the result, without the
    invocation counter unless ``keep_counter``."""
    from meter_bridge.executors import execute_job

    model = fleet.meter(serial)
    meter = {**hls_job_meter(model, fleet.port_of(serial), id=1, timeout_s=3), **meter_kw}
    job = {"id": 1, "job_type": job_type, "payload": payload or {}, "meter": meter}
    result = execute_job({**job, **(job_kw or {})}, deadline_s=deadline_s)
    if not keep_counter:
        result.pop("invocation_counter", None)
    return result
