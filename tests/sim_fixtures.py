"""Shared pytest fixtures for simulated meters (the lead wires them into conftest)."""

from __future__ import annotations

import pytest

from meter_sim.fleet import Fleet
from meter_sim.model import MeterConfig
from meter_sim.testing import run_cli


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
