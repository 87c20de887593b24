"""Running and auditing the pipeline against a Dagster instance: what is not a definition."""
