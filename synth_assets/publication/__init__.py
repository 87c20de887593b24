"""Public releases: the files, the data card and its Data Package descriptor, the pointer to the latest."""

from synth_assets.publication.datapackage import ColumnInfo, data_package, describe_columns, describe_records
from synth_assets.publication.release import DataCard, LinkedTable, latest_release, publish_release, release_id

__all__ = ["ColumnInfo", "DataCard", "LinkedTable", "data_package", "describe_columns", "describe_records",
           "latest_release", "publish_release", "release_id"]
