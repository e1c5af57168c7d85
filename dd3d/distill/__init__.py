"""Distillation and coreset methods behind one interface (:class:`dd3d.distill.base.Method`)."""
from __future__ import annotations

import importlib
from typing import Any

from dd3d.distill.base import DistillContext, Method

# method name -> "module:Class"; imported on demand so a method's dependencies load only when used
METHODS = {
    "random": "dd3d.distill.coreset:RandomCoreset",
    "herding": "dd3d.distill.coreset:Herding",
    "kcenter": "dd3d.distill.coreset:KCenter",
    "gm": "dd3d.distill.gm:GM",
    "dm": "dd3d.distill.dm:DM",
    "tm": "dd3d.distill.tm:TM",
    "sadm": "dd3d.distill.sadm:SADM",
    "pcc": "dd3d.distill.pcc:PCC",
    "dd3d": "dd3d.distill.dd3d:DD3D",
}


def build_method(name: str, ctx: DistillContext, state: dict[str, Any] | None = None,
                 progress: bool = False) -> Method:
    """Instantiate method ``name`` (a key of :data:`METHODS`) in ``ctx``, then restore ``state`` (a
    resumed run) or run its one-off start (:meth:`Method.start`, a new run; a progress bar if ``progress``)."""
    module, cls = METHODS[name].split(":")
    method: Method = getattr(importlib.import_module(module), cls)(ctx)
    if state is not None:
        method.load_state_dict(state)
    else:
        method.start(progress)
    return method
