"""Dagster definitions of the matching stage."""
