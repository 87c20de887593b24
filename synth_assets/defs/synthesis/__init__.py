"""Dagster definitions of the synthesis stage."""
