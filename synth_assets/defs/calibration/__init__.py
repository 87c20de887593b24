"""Dagster definitions of the calibration stage."""
