"""What a method shows of its synthetic set: clouds regenerated from a generator at any resolution,
or stored clouds at their size.

Both kinds answer :meth:`cloud` (the points and part labels of one class's sample) and
:meth:`full_set` (every cloud, for an export), so the lab's panels, a finished run folder and a
watched checkpoint are shown by the same code. A method hands one out with
:meth:`dd3d.distill.base.Method.preview`: a copy that another thread may read while the method
keeps training.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dd3d.nn.partition import NoisePartition
from dd3d.synthetic import SyntheticSet, generated_set

DISPLAY_SEED = 0  # noise of displayed DD3D clouds: fixed, so only the weights change them

#: one cloud's points (N, 3) float32 and part labels (N,) or None
Arrays = tuple[np.ndarray, np.ndarray | None]


@dataclass(frozen=True)
class GeneratedClouds:
    """A DD3D generator's clouds (DD3D, Sec. 4: the generator is queried at any resolution), with part
    labels from the noise ``partition`` for segmentation runs. Sample s of class c is row c·cpc + s mod cpc."""

    generator: torch.nn.Module
    partition: NoisePartition | None
    num_classes: int
    cpc: int

    regenerates = True

    @torch.no_grad()
    def cloud(self, c: int, sample: int, points: int) -> Arrays:
        from dd3d.data.transforms import normalize_unit_sphere
        from dd3d.nn.partition import generate_labelled

        row = torch.tensor([c * self.cpc + sample % self.cpc])
        clouds, parts = generate_labelled(self.generator, self.partition, row, self.cpc, points,
                                          torch.Generator().manual_seed(DISPLAY_SEED))
        return normalize_unit_sphere(clouds)[0].numpy(), None if parts is None else parts[0].numpy()

    def full_set(self, points: int) -> SyntheticSet:
        return generated_set(self.generator, self.partition, self.num_classes, self.cpc, points,
                             torch.Generator().manual_seed(DISPLAY_SEED))


@dataclass(frozen=True)
class StoredClouds:
    """A distilled set as it was stored (``synthetic.h5``, or a method's points): fixed size."""

    synthetic: SyntheticSet

    regenerates = False

    @property
    def cpc(self) -> int:
        """Clouds of the most populous class."""
        return int(np.bincount(self.synthetic.labels).max()) if len(self.synthetic.labels) else 0

    def cloud(self, c: int, sample: int, points: int) -> Arrays | None:
        """The ``sample`` mod n-th of the n clouds labelled ``c`` (None when the set has none); ``points`` is ignored."""
        rows = np.flatnonzero(self.synthetic.labels == c)
        if len(rows) == 0:
            return None
        row = rows[sample % len(rows)]
        return self.synthetic.points[row], None if self.synthetic.parts is None else self.synthetic.parts[row]

    def full_set(self, points: int) -> SyntheticSet:
        return self.synthetic


Preview = GeneratedClouds | StoredClouds
