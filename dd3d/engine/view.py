"""The engine's view state: what is looked at (class, sample, DD3D resolution) and the clouds of it.

:class:`RealView` holds what every engine shows beside its synthetic clouds: the selected real cloud
of a run's training split and its canonicalisation demo (random rotation -> PCA -> a rotator). The
lab's view thread owns one :class:`ViewState`: after every training step, and at once after a
selection or resolution change, it takes the selected cloud of every method from the copy the
method handed out (:meth:`dd3d.distill.base.Method.preview`: DD3D's regenerated from a copy of its
generator at the resolution, GM's as trained), runs the canonicalisation demo with the live trained
rotator and builds a :class:`~dd3d.engine.snapshot.Snapshot`. Clouds are cached by what they depend
on, so an unchanged cloud is the same object in consecutive snapshots.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Hashable

import numpy as np
import torch

from dd3d.config import Config, resolve_up_axis, rotator_kind
from dd3d.distill.base import DistillContext
from dd3d.engine.snapshot import Cloud, MethodView, Mode, Snapshot, State, memory_bytes
from dd3d.engine.training import Progress, SharedData
from dd3d.nn.rotator import Rotator
from dd3d.previews import Preview

ROTATOR_LABELS = {"learned": "rotator (learned)", "fixed": "rotator (fixed sign)"}
SIGN_FIX_LABEL = "sign fix (aligned data: no rotator trained)"


def preview_cloud(preview: Preview, c: int, sample: int, points: int) -> Cloud | None:
    """Sample ``sample`` of class ``c`` of ``preview`` as a read-only :class:`Cloud` (None when it has none)."""
    arrays = preview.cloud(c, sample, points)
    return None if arrays is None else Cloud.of(*arrays)


def shown_rotator(cfg: Config, trained: Rotator | None = None) -> tuple[Rotator, str]:
    """The rotator of the canonicalisation demo and its label: ``trained`` when it is a learned or
    fixed rotator, else (aligned data, no rotator trained) the parameter-free sign fix."""
    kind = trained.kind if trained is not None else rotator_kind(cfg)
    if trained is not None and kind in ROTATOR_LABELS:
        return trained.eval(), ROTATOR_LABELS[kind]
    shown = kind if kind in ROTATOR_LABELS else "fixed"
    rotator = Rotator(shown, cfg.model.rotator.fourier, cfg.model.rotator.omega).eval()
    return rotator, ROTATOR_LABELS[kind] if kind in ROTATOR_LABELS else SIGN_FIX_LABEL


class RealView:
    """The real side of a view: clamped selection, the selected real cloud of the training split (at
    ``eval.resolution``, with part labels for segmentation configs) and its canonicalisation stages."""

    def __init__(self, cfg: Config, ctx: DistillContext, device: str, rotator: Rotator, rotator_label: str) -> None:
        self.cfg, self.ctx, self.device = cfg, ctx, device
        self.rotator, self.rotator_label = rotator, rotator_label
        self._real: tuple[Any, Cloud] | None = None
        self._canonical: tuple[Any, tuple[Cloud, ...]] | None = None

    def selected(self, selection: tuple[int, int]) -> tuple[int, int, int]:
        """(class, real index in the training split, sample within the class) after clamping."""
        ctx = self.ctx
        c = min(max(selection[0], 0), ctx.num_classes - 1)
        pool = ctx.by_class[c]
        sample = min(max(selection[1], 0), len(pool) - 1)
        return c, int(pool[sample]), sample

    def real_cloud(self, c: int, index: int, sample: int) -> Cloud:
        if self._real is None or self._real[0] != (c, sample):
            real = self.ctx.real_full
            parts = real.parts[index] if self.cfg.task == "segmentation" and real.parts is not None else None
            self._real = ((c, sample), Cloud.of(real.points[index], parts))
        return self._real[1]

    @torch.no_grad()
    def canonical_clouds(self, c: int, sample: int, real: Cloud, rotator_version: Hashable) -> tuple[Cloud, ...]:
        """Randomly rotated (seeded by class and sample), PCA, rotator output; recomputed when the
        selection or ``rotator_version`` (e.g. the training iteration of a live rotator) changes."""
        from dd3d.data.transforms import random_rotations, rotate

        key = (c, sample, rotator_version)
        if self._canonical is None or self._canonical[0] != key:
            turn = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + c * 10_007 + sample)
            points = torch.from_numpy(np.array(real.points))[None]
            raw = rotate(points, random_rotations(1, turn))
            stages = (raw, self.rotator.align(raw), self.rotator(raw))
            self._canonical = (key, tuple(Cloud.of(s[0].numpy(), real.parts) for s in stages))
        return self._canonical[1]

    def snapshot(self, seq: int, state: State, message: str, selection: tuple[int, int], resolution: int,
                 methods: Callable[[int, int], tuple[MethodView, ...]], rotator_version: Hashable,
                 **extra: Any) -> Snapshot:
        """A snapshot of the selection with ``methods(class, sample)`` as synthetic panels; ``extra``
        sets the optional :class:`Snapshot` fields (``mode``, ``eta_seconds``, ``updated_at``)."""
        ctx, cfg = self.ctx, self.cfg
        real_set = ctx.real_full
        c, index, sample = self.selected(selection)
        real = self.real_cloud(c, index, sample)
        is_seg = cfg.task == "segmentation"
        class_parts = tuple(real_set.category_parts.get(c, ())) if is_seg and real_set.category_parts else ()
        return Snapshot(
            seq=seq, state=state, message=message, device=self.device, memory_bytes=memory_bytes(),
            task=cfg.task, class_names=tuple(real_set.class_names),
            part_names=tuple(real_set.part_names) if is_seg and real_set.part_names else None,
            class_parts=class_parts, selected_class=c, selected_sample=sample,
            samples_in_class=len(ctx.by_class[c]), cpc=ctx.cpc, resolution=resolution,
            target_iterations=cfg.distill.iterations, methods=methods(c, sample),
            real=real, canonical=self.canonical_clouds(c, sample, real, rotator_version),
            canonical_labels=("raw (random rotation)", "PCA", self.rotator_label),
            up_axis=resolve_up_axis(cfg.data), **extra,
        )


def bare_snapshot(seq: int, state: State, message: str, cfg: Config | None, resolution: int,
                  mode: Mode = Mode.LAB) -> Snapshot:
    """State and message only: nothing loaded yet (or loading failed)."""
    task, cpc, total = (cfg.task, cfg.distill.cpc, cfg.distill.iterations) if cfg is not None else ("", 0, 0)
    return Snapshot(seq, state, message, "", memory_bytes(), task, (), None, (), 0, 0, 0, cpc, resolution, total,
                    (), None, (), (), mode=mode, up_axis=resolve_up_axis(cfg.data) if cfg is not None else "y")


class ViewState:
    """The lab view thread's state: selection, resolution, the last progress, and cached clouds."""

    def __init__(self, cfg: Config, resolution: int) -> None:
        self.cfg = cfg
        self.resolution = resolution
        self.selection = (0, 0)
        self.data: SharedData | None = None
        self.progress: Progress | None = None
        self.real: RealView | None = None
        self._synthetic: dict[str, tuple[Any, Cloud]] = {}  # keyed by what the cloud depends on

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
            if arg.rotator is not None and self.real is not None and self._rotator_is_live():
                self.real.rotator.load_state_dict(arg.rotator)

    def _rotator_is_live(self) -> bool:
        return rotator_kind(self.cfg) == "learned"

    def _build_modules(self, data: SharedData) -> None:
        rotator, label = shown_rotator(self.cfg)
        self.real = RealView(self.cfg, data.ctx, data.device, rotator,
                             "rotator (learned, live)" if self._rotator_is_live() else label)

    # ------------------------------------------------------------------------------- building

    def _synthetic_cloud(self, i: int, c: int, sample: int) -> Cloud | None:
        """The selected synthetic cloud of method ``i`` from its preview (regenerated at the resolution
        when the method has a generator, else as trained)."""
        p, name = self.progress, self.data.methods[i]
        preview = p.clouds[i]
        key = (p.iterations[i], c, sample % self.data.ctx.cpc, self.resolution if preview.regenerates else 0)
        cached = self._synthetic.get(name)
        if cached is None or cached[0] != key:
            cached = (key, preview_cloud(preview, c, sample, self.resolution))
            self._synthetic[name] = cached
        return cached[1]

    def _method_views(self, c: int, sample: int) -> tuple[MethodView, ...]:
        p = self.progress
        if p is None or not p.iterations:
            return ()
        return tuple(MethodView(name, p.iterations[i], p.losses[i], p.seconds[i], self._synthetic_cloud(i, c, sample))
                     for i, name in enumerate(self.data.methods))

    def snapshot(self, seq: int, final: bool) -> Snapshot:
        p = self.progress
        state = p.state if p is not None else State.STARTING
        if final and state != State.ERROR:
            state = State.STOPPED
        message = p.message if p is not None else ""
        if self.real is None:  # failed while loading: nothing to show but the message
            return bare_snapshot(seq, state, message, self.cfg, self.resolution)
        version = p.rotator_iteration if p is not None and self._rotator_is_live() else 0
        return self.real.snapshot(seq, state, message, self.selection, self.resolution, self._method_views, version)
