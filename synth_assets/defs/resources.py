"""Resources: where the data lives, the catalog, and the compute the models may use."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field, PrivateAttr, field_validator

from synth_assets.catalog import Catalog, load_catalog
from synth_assets.common.layout import DataLayout
from synth_assets.common.parallel import resolved_jobs


class ProjectResource(dg.ConfigurableResource):
    """The project's data root (``data/`` by default), its catalog, and where intermediates live.

    ``storage_root`` (any fsspec URL) holds the warehouse and the models; unset, the data root.
    ``release_options`` overlay the catalog's release section for these definitions' runs
    (``synth-assets run --set release.disclosure.k=5``; keys: ``catalog.model.RUN_RELEASE_OPTIONS``).
    """

    data_root: str
    storage_root: str | None = None
    catalog_file: str | None = None
    release_options: dict[str, Any] = {}

    _catalog: Catalog | None = PrivateAttr(default=None)

    @property
    def layout(self) -> DataLayout:
        return DataLayout(Path(self.data_root), storage=self.storage_root)

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.catalog_file or self.layout.catalog).with_release_options(
                dict(self.release_options))
        return self._catalog


class ComputeResource(dg.ConfigurableResource):
    """How heavy steps use the machine: torch threads and the device for the networks, and the
    threads of the work that releases the GIL (CART's trees, validation's propensity models and
    distance searches).

    ``threads`` follows scikit-learn's ``n_jobs`` (-1: every core the step's process may use, its
    CPU affinity: a pod's share on Kubernetes). Unlike torch's OpenMP threads, which spin while
    they wait, these threads sleep, so two steps side by side on two cores lose little to them
    (``bench/README.md``, "Fifteenth pass").

    ``processes``, in the same convention, is how many child processes a step forks for pieces
    that are independent but hold the GIL (the region step's replicates: pandas and the samplers'
    Python): each child shares the step's memory as it was at the fork, and adds its own working set.
    Unset, every core below a register size and one from there, where the children's working sets
    would take a run past 4 GB (``defs.working_sets.child_processes``: 500,000 persons for the region
    step's replicates, 1,300,000 for the matched replicates' fusions). A replicate
    drawn in the step's own process enforces its chunks of candidates in as many children, each
    holding one chunk, while the step draws the next (``defs.working_sets.chunk_processes``).
    """

    torch_threads: int = Field(default=1, ge=1)  # measured here: 1 thread beat the default 2 by ~3x under load
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(default=-1, ge=-1)
    processes: int | None = Field(default=None, ge=-1)

    @field_validator("threads", "processes")
    @classmethod
    def _threads(cls, value: int | None) -> int | None:
        resolved_jobs(value)  # 0 refused, naming the convention
        return value

    def use_gpu(self) -> bool:
        if self.device == "cpu":
            return False
        import torch

        available = torch.cuda.is_available()
        if self.device == "cuda" and not available:
            raise RuntimeError("ComputeResource.device is 'cuda' but torch sees no GPU")
        return available

    def configure_torch(self) -> None:
        import torch

        torch.set_num_threads(self.torch_threads)
