"""Dagster definitions of the publication stage."""
