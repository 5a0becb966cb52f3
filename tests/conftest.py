"""Shared fixtures of the meter_sim, meter_bridge and end-to-end tests."""
