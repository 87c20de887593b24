"""Dagster definitions of the harmonise stage."""
