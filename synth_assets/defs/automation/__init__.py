"""Dagster definitions of the automation stage."""
