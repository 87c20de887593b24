"""Mapping each source onto the common schema."""

from synth_assets.harmonise.apply import HarmonisationError, harmonise_record_rows, harmonise_table, out_of_range

__all__ = ["HarmonisationError", "harmonise_record_rows", "harmonise_table", "out_of_range"]
