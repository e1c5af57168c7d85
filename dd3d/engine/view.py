"""The engine's view state: what is looked at (class, sample, DD3D resolution) and the clouds of it.

The view thread owns one :class:`ViewState`. After every training step, and at once after a
selection or resolution change, it regenerates the selected DD3D cloud from a copy of the generator
weights (DD3D, Sec. 4: the generator is queried at any resolution), takes the selected GM cloud,
runs the canonicalisation demo (random rotation -> PCA -> the DD3D method's live rotator) and
builds a :class:`~dd3d.engine.snapshot.Snapshot`. Clouds are cached by what they depend on, so an
unchanged cloud is the same object in consecutive snapshots.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from dd3d.config import Config, rotator_kind
from dd3d.engine.snapshot import Cloud, MethodView, Snapshot, State, memory_bytes
from dd3d.engine.training import Progress, SharedData

DISPLAY_SEED = 0  # noise of the displayed DD3D cloud: fixed, so only training changes it


class ViewState:
    """The view thread's state: selection, resolution, the last progress, and cached clouds."""

    def __init__(self, cfg: Config, resolution: int) -> None:
        self.cfg = cfg
        self.resolution = resolution
        self.selection = (0, 0)
        self.data: SharedData | None = None
        self.progress: Progress | None = None
        self._generator: torch.nn.Module | None = None
        self._rotator: torch.nn.Module | None = None
        self._rotator_label = ""
        # caches keyed by what the cloud depends on, so an unchanged cloud is the same object
        self._real: tuple[Any, Cloud] | None = None
        self._canonical: tuple[Any, tuple[Cloud, ...]] | None = None
        self._synthetic: dict[str, tuple[Any, Cloud]] = {}

    def apply(self, name: str, arg: Any) -> None:
        """One event from the engine: ``resolution``, ``select``, ``data`` or ``progress``."""
        if name == "resolution":
            self.resolution = arg
        elif name == "select":
            self.selection = arg
        elif name == "data":
            self.data = arg
            self._build_modules(arg)
        elif name == "progress":
            if arg.state == State.ERROR and self.progress is not None:  # keep the last progress on screen
                arg = dataclasses.replace(self.progress, state=State.ERROR, message=arg.message)
            self.progress = arg
            if arg.generator is not None and self._generator is not None:
                self._generator.load_state_dict(arg.generator)
            if arg.rotator is not None and self._rotator is not None and self._rotator_is_live():
                self._rotator.load_state_dict(arg.rotator)

    def _rotator_is_live(self) -> bool:
        return rotator_kind(self.cfg) == "learned"

    def _build_modules(self, data: SharedData) -> None:
        from dd3d.distill.dd3d import build_generator
        from dd3d.nn.rotator import Rotator

        cfg, ctx = self.cfg, data.ctx
        if "dd3d" in data.methods:
            g = cfg.distill.generator
            self._generator = build_generator(ctx.num_classes, ctx.cpc, g.width, g.layers, g.omega0).eval()
        kind = rotator_kind(cfg)
        shown = kind if kind in ("fixed", "learned") else "fixed"  # aligned data: show the parameter-free sign fix
        self._rotator = Rotator(shown, cfg.model.rotator.fourier, cfg.model.rotator.omega).eval()
        self._rotator_label = {"learned": "rotator (learned, live)", "fixed": "rotator (fixed sign)"}.get(
            kind, "sign fix (aligned data: no rotator trained)")

    # ------------------------------------------------------------------------------- building

    def _selected(self) -> tuple[int, int, int]:
        """(class, real index in the training split, sample within the class) after clamping."""
        ctx = self.data.ctx
        c = min(max(self.selection[0], 0), ctx.num_classes - 1)
        pool = ctx.by_class[c]
        sample = min(max(self.selection[1], 0), len(pool) - 1)
        return c, int(pool[sample]), sample

    def _real_cloud(self, c: int, index: int, sample: int) -> Cloud:
        if self._real is None or self._real[0] != (c, sample):
            real = self.data.ctx.real_full
            parts = real.parts[index] if self.cfg.task == "segmentation" and real.parts is not None else None
            self._real = ((c, sample), Cloud.of(real.points[index], parts))
        return self._real[1]

    @torch.no_grad()
    def _canonical_clouds(self, c: int, sample: int, real: Cloud) -> tuple[Cloud, ...]:
        from dd3d.data.transforms import random_rotations, rotate

        key = (c, sample, self._iteration("dd3d") if self._rotator_is_live() else 0)
        if self._canonical is None or self._canonical[0] != key:
            turn = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + c * 10_007 + sample)
            points = torch.from_numpy(np.array(real.points))[None]
            raw = rotate(points, random_rotations(1, turn))
            stages = (raw, self._rotator.align(raw), self._rotator(raw))
            self._canonical = (key, tuple(Cloud.of(s[0].numpy(), real.parts) for s in stages))
        return self._canonical[1]

    def _iteration(self, name: str) -> int:
        p = self.progress
        if p is None or name not in self.data.methods or not p.iterations:
            return 0
        return p.iterations[self.data.methods.index(name)]

    @torch.no_grad()
    def _synthetic_cloud(self, name: str, row: int) -> Cloud | None:
        """The selected synthetic cloud of ``name`` (GM: as trained; DD3D: regenerated at the resolution)."""
        from dd3d.data.transforms import normalize_unit_sphere
        from dd3d.nn.partition import generate_labelled

        p = self.progress
        key = (self._iteration(name), row, self.resolution if name == "dd3d" else 0)
        cached = self._synthetic.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        if name == "gm" and p.gm_points is not None:
            points, parts = p.gm_points[row:row + 1], None if p.gm_parts is None else p.gm_parts[row]
        elif name == "dd3d" and self._generator is not None:
            points, parts = generate_labelled(self._generator, p.partition, torch.tensor([row]), self.data.ctx.cpc,
                                              self.resolution, torch.Generator().manual_seed(DISPLAY_SEED))
            parts = None if parts is None else parts[0]
        else:
            return None
        cloud = Cloud.of(normalize_unit_sphere(points)[0].numpy(), None if parts is None else parts.numpy())
        self._synthetic[name] = (key, cloud)
        return cloud

    def _method_views(self, c: int, sample: int) -> tuple[MethodView, ...]:
        p, ctx = self.progress, self.data.ctx
        row = c * ctx.cpc + sample % ctx.cpc
        return tuple(MethodView(name, p.iterations[i], p.losses[i], p.seconds[i], self._synthetic_cloud(name, row))
                     for i, name in enumerate(self.data.methods))

    def snapshot(self, seq: int, final: bool) -> Snapshot:
        p = self.progress
        state = p.state if p is not None else State.STARTING
        if final and state != State.ERROR:
            state = State.STOPPED
        message = p.message if p is not None else ""
        if self.data is None:  # failed while loading: nothing to show but the message
            return Snapshot(seq, state, message, "", memory_bytes(), self.cfg.task, (), None, (), 0, 0, 0,
                            self.cfg.distill.cpc, self.resolution, self.cfg.distill.iterations, (), None, (), ())
        ctx = self.data.ctx
        real_set = ctx.real_full
        c, index, sample = self._selected()
        real = self._real_cloud(c, index, sample)
        methods = self._method_views(c, sample) if p is not None and p.iterations else ()
        is_seg = self.cfg.task == "segmentation"
        class_parts = tuple(real_set.category_parts.get(c, ())) if is_seg and real_set.category_parts else ()
        return Snapshot(
            seq=seq, state=state, message=message, device=self.data.device, memory_bytes=memory_bytes(),
            task=self.cfg.task, class_names=tuple(real_set.class_names),
            part_names=tuple(real_set.part_names) if is_seg and real_set.part_names else None,
            class_parts=class_parts, selected_class=c, selected_sample=sample,
            samples_in_class=len(ctx.by_class[c]), cpc=ctx.cpc, resolution=self.resolution,
            target_iterations=self.cfg.distill.iterations, methods=methods,
            real=real, canonical=self._canonical_clouds(c, sample, real),
            canonical_labels=("raw (random rotation)", "PCA", self._rotator_label),
        )
