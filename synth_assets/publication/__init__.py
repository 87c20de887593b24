"""Public releases: the files, the data card, the pointer to the latest."""

from synth_assets.publication.release import DataCard, latest_release, publish_release, release_id

__all__ = ["DataCard", "latest_release", "publish_release", "release_id"]
