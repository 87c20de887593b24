"""Dagster definitions of the validation stage."""
