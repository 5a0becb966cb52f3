"""Shared fixtures of the meter_sim, meter_bridge and end-to-end tests."""

from sim_fixtures import sim_cli, sim_fleet  # noqa: F401  (fixtures for every test here)
