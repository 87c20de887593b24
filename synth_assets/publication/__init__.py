"""Public releases: the files, the data card and its Data Package descriptor, the pointer to the latest."""

from synth_assets.publication.datapackage import ColumnInfo, data_package, describe_columns
from synth_assets.publication.release import DataCard, latest_release, publish_release, release_id

__all__ = ["ColumnInfo", "DataCard", "data_package", "describe_columns", "latest_release", "publish_release", "release_id"]
