"""Typed, validated configuration.

A config is a YAML mapping loaded into the :class:`Config` dataclass tree. Every CLI command takes
``--config FILE`` plus repeatable ``--set dotted.key=value`` overrides. Unknown keys (with a
suggestion for typos), wrong types and out-of-range values are rejected with one line naming the
file, the key, what was given and what is allowed.

Range limits live in each field's ``metadata`` (``min``/``max`` for numbers); strings allowed are ``Literal`` types.
Each field's meaning is the string literal under it (an attribute docstring); :mod:`dd3d.configdoc`
builds docs/configuration.md's reference table from the fields, their types, defaults, ranges and
these strings.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from dd3d.errors import ConfigError

DATASETS = ("shapes", "modelnet40", "scanobjectnn", "shapenet_part", "folder")


def _range(default: Any, lo: float | None = None, hi: float | None = None, **extra: Any) -> Any:
    """A dataclass field with an allowed numeric range recorded in its metadata."""
    return field(default=default, metadata={"min": lo, "max": hi, **extra})


@dataclass
class BuiltinConfig:
    """Sizes of the built-in procedural ``shapes`` dataset (ignored for other datasets)."""

    train_per_class: int = _range(100, 1)
    """Training clouds per class of the built-in dataset."""
    test_per_class: int = _range(30, 1)
    """Test clouds per class of the built-in dataset."""
    seed: int = _range(0, 0)
    """Seed of the built-in dataset (it is generated deterministically from it)."""


@dataclass
class DataConfig:
    """Which dataset, where it lives and how clouds are prepared (paper §5 "Data Preparation").

    ``up_axis`` is the axis that points up in the stored clouds; figures and the lab stand it on the
    screen's vertical. ``auto`` means the usual convention of the dataset (:func:`resolve_up_axis`).
    """

    name: Literal["shapes", "modelnet40", "scanobjectnn", "shapenet_part", "folder"] = "shapes"
    """Dataset loader (docs/datasets.md)."""
    root: str | None = None
    """Dataset folder (required except for ``shapes``); a relative path is resolved against the config file's
    folder.
    """
    variant: Literal["obj_bg", "obj_only"] = "obj_bg"
    """ScanObjectNN: ``obj_bg`` or ``obj_only`` (the ``_nobg`` files)."""
    lists: Literal["auto", "modelnet40", "modelnet10"] = "auto"
    """PointNet++ text layout: read the ``modelnet40_*`` or ``modelnet10_*`` split lists (``auto``:
    modelnet40's when present).
    """
    train_split: Literal["train", "trainval", "val", "test"] = "train"
    """Split trained on (``trainval``, ``val`` for ShapeNet-part)."""
    test_split: Literal["train", "trainval", "val", "test"] = "test"
    """Split tested on."""
    resolution: int = _range(1024, 1)
    """Points per cloud."""
    sampling: Literal["random", "fps"] = "random"
    """``random`` subset or ``fps`` (farthest-point sampling)."""
    setting: Literal["aligned", "rotated"] = "aligned"
    """``aligned`` or ``rotated`` (random SO(3) per cloud)."""
    canonical: Literal["none", "pca"] = "none"
    """``none`` or ``pca`` (each cloud projected on its principal axes, paper §5)."""
    rotation_seed: int = _range(0, 0)
    """Seed of the per-cloud rotations and resampling."""
    max_classes: int | None = _range(None, 1)
    """Keep only the N most populous classes (MVPNet100); null keeps every class."""
    up_axis: Literal["auto", "x", "y", "z"] = "auto"
    """Axis pointing up in the clouds (``auto``: the dataset's convention, z in the ModelNet10 configs),
    stood upright by renders and the lab (docs/figures.md).
    """
    builtin: BuiltinConfig = field(default_factory=BuiltinConfig)


@dataclass
class AugmentConfig:
    """Training augmentation (docs/reference-settings.md: scale, jitter, small rotation perturbation)."""

    enabled: bool = True
    """Training augmentation on/off."""
    scale_low: float = _range(0.8, 0.0)
    """Smallest random isotropic scale."""
    scale_high: float = _range(1.25, 0.0)
    """Largest random isotropic scale."""
    jitter_sigma: float = _range(0.01, 0.0)
    """Standard deviation of the per-point Gaussian jitter."""
    jitter_clip: float = _range(0.05, 0.0)
    """Clip of the per-point Gaussian jitter."""
    rotate_sigma: float = _range(0.06, 0.0)
    """Standard deviation of the rotation perturbation (radians)."""
    rotate_clip: float = _range(0.18, 0.0)
    """Clip of the rotation perturbation (radians)."""


@dataclass
class RotatorConfig:
    """The point cloud rotator r wrapped around the backbone (paper §4.1, Eq. 7-9).

    ``kind``: ``none`` (identity), ``pca`` (principal axes only; sign-ambiguous), ``fixed`` (PCA +
    the released parameter-free sign s_j = sign(mean_n sin(omega x_nj))), ``learned`` (PCA + the
    paper's learned sign: sin Fourier features of periods 1..``fourier``, mean pooling, learned
    decoder, Sign), or ``auto`` = ``learned`` for the rotated setting and ``none`` for aligned data.
    """

    kind: Literal["auto", "none", "pca", "fixed", "learned"] = "auto"
    """``none``, ``pca``, ``fixed`` (released parameter-free sign), ``learned`` (paper Eq. 8-9); ``auto`` =
    ``learned`` for rotated data, else ``none``.
    """
    fourier: int = _range(8, 1)
    """Periods t of the sin features (Eq. 8)."""
    omega: float = _range(1.0, 0.0)
    """Frequency ω of the ``fixed`` variant and base frequency of ``learned``."""


@dataclass
class ModelConfig:
    """The backbone trained on real or synthetic clouds (``dd3d.models`` registry; paper §5.3).

    ``size: small`` divides every width (and the sampled centres) by 4 for CPU runs; ``full`` is the
    published configuration.
    """

    name: Literal["pointnet", "pointnet2", "dgcnn", "pct", "pointmlp", "pointnext"] = "pointnet"
    """Backbone: ``pointnet`` (without T-Net, InstanceNorm; BatchNorm for segmentation), ``pointnet2`` (SSG),
    ``dgcnn`` (k=20), ``pct``, ``pointmlp`` (elite), ``pointnext`` (S); segmentation: ``pointnet``,
    ``pointnet2``, ``dgcnn`` (docs/backbones.md).
    """
    size: Literal["full", "small"] = "full"
    """``full`` (published configuration) or ``small`` (widths and sampled centres ÷4, for CPU runs)."""
    rotator: RotatorConfig = field(default_factory=RotatorConfig)


@dataclass
class TrainConfig:
    """Training of a backbone (full data with ``dd3d train``)."""

    epochs: int = _range(200, 1)
    """Training epochs."""
    batch_size: int = _range(32, 1)
    """Mini-batch size."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """``adam`` or ``sgd``."""
    lr: float = _range(1e-3, 0.0)
    """Learning rate."""
    momentum: float = _range(0.9, 0.0, 1.0)
    """SGD momentum."""
    weight_decay: float = _range(5e-4, 0.0)
    """Weight decay."""
    scheduler: Literal["cosine", "step", "none"] = "cosine"
    """``cosine`` (to ``min_lr``), ``step`` (×``gamma`` every ``step_size`` epochs), ``none``."""
    min_lr: float = _range(1e-4, 0.0)
    """Final learning rate of the ``cosine`` schedule."""
    step_size: int = _range(100, 1)
    """Epochs between the ``step`` schedule's steps."""
    gamma: float = _range(0.1, 0.0, 1.0)
    """Factor of each step of the ``step`` schedule."""
    checkpoint_every: int = _range(1, 1)
    """Epochs between checkpoints."""


@dataclass
class GeneratorConfig:
    """The point-wise SIREN generator with its class/sample modulator (paper Eq. 10-12).

    ``init`` is where matching starts: ``noise`` (the paper: a freshly initialised generator) or
    ``real`` (beyond the paper, :mod:`dd3d.distill.warm_start`): before matching, the generator and
    every sample's latent are fitted for ``init_steps`` Adam steps (lr ``init_lr``) by Chamfer distance
    to one real cloud of the sample's class chosen as herding chooses (segmentation: each part's noise
    interval to that part's points).
    """

    width: int = _range(256, 1)
    """Hidden width of the SIREN generator (Eq. 10-12)."""
    layers: int = _range(2, 1)
    """Hidden layers of the SIREN generator."""
    omega0: float = _range(100.0, 0.0)
    """SIREN frequency ω0; the reference uses 100 (ModelNet, MVPNet), 50 (ScanObjectNN), 400 (ShapeNet-part).
    """
    noise_dim: int = _range(1, 1, 3)
    """Noise values per generated point: 1 (the paper; every cloud is one curve, the image of [0, 1]) or 2-3
    (beyond the paper: a folded sheet or volume, which lets a warm-started generator draw recognisable surfaces;
    docs/fidelity.md). Segmentation parts are intervals of the first noise value either way.
    """
    noise: Literal["uniform", "stratified"] = "uniform"
    """How a cloud's N noise values are drawn: ``uniform`` (the paper: N independent U(0, 1) draws) or
    ``stratified`` (beyond the paper: Latin-hypercube draws, one value in each 1/N slice of [0, 1] along every
    noise coordinate, in random order). Each value is still U(0, 1), but the N points cover the curve evenly
    instead of leaving the gaps and clumps of independent draws, which lowers the matching distance of a
    warm-started generator to that of a real cloud (docs/fidelity.md).
    """
    init: Literal["noise", "real"] = "noise"
    """``noise`` (the paper) or ``real``: before matching, fit the generator to the herding clouds by Chamfer
    distance (beyond the paper; docs/fidelity.md).
    """
    init_steps: int = _range(500, 0)
    """Adam steps of the ``real`` warm start."""
    init_lr: float = _range(1e-3, 0.0)
    """Adam learning rate of the ``real`` warm start."""
    warm_lr: float = _range(1e-4, 0.0)
    """Adam learning rate of matching after a ``real`` warm start, in place of ``distill.adam_lr``
    (``distill.lr`` still wins): at the paper's 1e-3, 200 matching updates carry the generator away from
    the fitted clouds (ModelNet10 aligned cpc 1, seed 0: 67.1 % at 1e-3 against 79.9 % at 1e-4; docs/results.md).
    """


@dataclass
class TrajectoryConfig:
    """Trajectory matching (TM/MTT): experts cached to disk, unrolled student steps."""

    experts: int = _range(5, 1)
    """Expert trajectories trained and cached."""
    expert_epochs: int = _range(20, 1)
    """Epochs of each expert trajectory."""
    expert_lr: float = _range(0.01, 0.0)
    """Learning rate of the experts' training."""
    expert_batch: int = _range(256, 1)
    """Mini-batch size of the experts' training."""
    max_start_epoch: int = _range(10, 0)
    """Latest expert epoch a matching segment may start from."""
    target_epochs: int = _range(2, 1)
    """Expert epochs between a segment's start and its target parameters."""
    student_steps: int = _range(20, 1)
    """Unrolled student steps per segment."""
    lr_lr: float = _range(1e-7, 0.0)
    """Learning rate of the learnable student step size."""
    lr_momentum: float = _range(0.5, 0.0, 1.0)
    """SGD momentum of the learnable student step size (MTT)."""
    min_student_lr: float = _range(1e-6, 0.0)
    """Lower clamp of the learnable student step size."""


@dataclass
class SADMConfig:
    """SADM (Yim et al., NeurIPS 2025): semantically aligned distribution matching, learned orientation.

    Loss per class between ``real_clouds`` real clouds and the class's synthetic clouds:
    cpc·(``sorted_weight``·MMD(channel-wise sorted per-point features) + ``pooled_weight``·MMD(max-pooled
    features)). SGD with momentum ``distill.momentum`` moves the points (lr ``lr``) and three Euler
    angles per synthetic cloud (lr ``angle_lr``, the y angle's ×``yaw_lr_factor``); the angles' rates
    decay ×``angle_lr_gamma`` every ``angle_lr_step`` iterations. ``distill.optimizer``/``distill.lr``
    and ``distill.real_batch`` do not apply to sadm. The paper does not publish ``lr`` and ``angle_lr``;
    ours are measured choices (see :mod:`dd3d.distill.sadm`).
    """

    real_clouds: int = _range(8, 1)
    """Real clouds per class in each loss."""
    sorted_weight: float = _range(0.002, 0.0)
    """Weight of the MMD of channel-wise sorted per-point features."""
    pooled_weight: float = _range(0.001, 0.0)
    """Weight of the MMD of max-pooled features."""
    lr: float = _range(1.0, 0.0)
    """SGD learning rate of the points."""
    angle_lr: float = _range(0.1, 0.0)
    """SGD learning rate of the Euler angles."""
    yaw_lr_factor: float = _range(10.0, 0.0)
    """Factor of the y angle's learning rate."""
    angle_lr_step: int = _range(100, 1)
    """Iterations between decays of the angles' learning rate."""
    angle_lr_gamma: float = _range(0.5, 0.0, 1.0)
    """Factor of each decay of the angles' learning rate."""


#: a loop schedule: synthetic clouds per class (cpc) -> (outer steps, inner epochs)
LoopSchedule = dict[int, tuple[int, int]]


def _schedule(default: LoopSchedule) -> Any:
    """A loop-schedule field; every config gets its own copy of ``default``."""
    return field(default_factory=lambda: dict(default))


@dataclass
class ScheduleConfig:
    """The reference (outer, inner) loop schedules of the gradient-matching methods (gm, pcc, dd3d), used
    when ``distill.outer_loop``/``inner_loop`` are null (docs/reference-settings.md "Loop schedule").

    Each table maps a cpc to ``[outer, inner]``, in YAML e.g. ``gm: {1: [1, 1], 10: [10, 50]}``; a run
    takes the entry of the nearest listed cpc (the smaller on a tie). Entries a config gives replace
    those of the same cpc, the others keep their defaults (so ``--set distill.schedule.gm.10=[10,20]``
    changes one entry).
    """

    dd3d_canonical: LoopSchedule = _schedule({1: (5, 5), 10: (20, 10), 50: (40, 5)})
    """(outer, inner) by cpc of DD3D on canonicalised clouds (a rotator, or ``data.canonical: pca``); the
    authors' release.
    """
    dd3d_aligned: LoopSchedule = _schedule({1: (10, 1), 10: (20, 1), 50: (40, 5)})
    """(outer, inner) by cpc of DD3D on raw (aligned) clouds; the authors' release."""
    gm: LoopSchedule = _schedule({1: (1, 1), 10: (10, 50), 50: (50, 10)})
    """(outer, inner) by cpc of GM and PCC; the DC codebase's."""
    segmentation: LoopSchedule = _schedule({1: (10, 1), 10: (10, 2)})
    """(outer, inner) by cpc of every gradient-matching method on ``task: segmentation``; the authors'
    release.
    """


@dataclass
class SGDRatesConfig:
    """Learning rates of the synthetic point tensors with ``distill.optimizer: sgd`` and ``distill.lr`` null:
    the image codebases' rates (momentum ``distill.momentum``)."""

    gm: float = _range(0.1, 0.0)
    """SGD rate of GM's and PCC's points when ``distill.lr`` is null (the DC codebase)."""
    dm: float = _range(1.0, 0.0)
    """SGD rate of DM's points when ``distill.lr`` is null (the DM codebase)."""
    tm: float = _range(0.1, 0.0)
    """SGD rate of TM's points when ``distill.lr`` is null (MTT-style)."""


@dataclass
class DistillConfig:
    """Dataset distillation (paper §4, Table 7; docs/reference-settings.md loop schedule).

    ``outer_loop``/``inner_loop`` null means the reference schedule (``schedule``) for the method, cpc
    and setting. ``iterations: 0`` keeps the starting point (the initial real clouds, or the warm-started
    generator), e.g. to measure what matching adds. ``optimizer`` is the optimiser of the synthetic data of gm/dm/tm: ``adam`` (paper
    Table 7: Adam, lr 1e-3, for every method) or ``sgd`` (the image codebases: momentum
    ``momentum``); ``lr`` null means ``adam_lr`` for Adam, and for SGD the image codebases' rates
    (``sgd_lr``). The dd3d generator always uses Adam with ``weight_decay`` (Table 7); weight
    decay is not applied to point tensors, where it would pull the points towards the origin. ``resolution`` is the number of
    points of real and synthetic clouds while distilling (paper §5.4) — independent of
    ``eval.resolution``.

    ``real_sampling``: ``fresh`` (the authors' release) draws, for every real batch, a new random subset
    of ``resolution`` points of each real cloud at ``data.resolution`` and re-normalises it to the unit
    sphere; ``fixed`` keeps one subset per cloud, drawn when the data is prepared. They differ only
    when ``resolution`` < ``data.resolution``. ``init_clouds``: which real clouds start the point-tensor
    methods (gm, dm, tm, sadm): ``random`` (DC) or ``herding`` (the coreset's choice).

    Schedules that follow the run's length (the release): the dd3d generator's Adam rate is multiplied
    by ``lr_gamma`` every ``lr_step`` iterations, null = once, at half of ``iterations`` (paper Table 7
    lists ×0.1 every 100 of 400 iterations: set ``lr_step: 100`` for that); the inner network's SGD
    rate (``net_lr``) by ``net_lr_gamma`` every ``net_lr_step`` inner epochs of an iteration, null =
    once, at half of outer × inner.

    Segmentation (paper §4.3, Eq. 14; docs/reference-settings.md "Segmentation distillation"): ``part_matching``
    chooses what each outer step matches — ``alternate`` (the reference: whole-shape GM on even
    outer steps, per-part GM on odd ones), ``whole`` or ``part``. Networks with BatchNorm (PointNetSeg)
    take their statistics from ``batchnorm_clouds`` real clouds per class before every matching step,
    then keep them frozen while gradients are matched.
    """

    method: Literal["random", "herding", "kcenter", "gm", "dm", "tm", "sadm", "pcc", "dd3d"] = "dd3d"
    """``random``, ``herding``, ``kcenter``, ``gm``, ``dm``, ``tm``, ``sadm``, ``pcc``, ``dd3d``
    (docs/methods.md).
    """
    cpc: int = _range(1, 1)
    """Synthetic clouds per class."""
    iterations: int = _range(400, 0)
    """Outer iterations (fresh network each; Table 7: 200 ScanObjectNN, 400 ModelNet40, 600 MVPNet100); 0
    keeps the starting point.
    """
    resolution: int = _range(1024, 1)
    """Points per real and synthetic cloud while distilling (paper §5.4: e.g. 256)."""
    real_batch: int = _range(32, 1)
    """Real clouds per class per outer step."""
    outer_loop: int | None = _range(None, 1)
    """Outer steps per iteration; null = the reference schedule's (``distill.schedule``, by method, cpc and
    setting).
    """
    inner_loop: int | None = _range(None, 0)
    """Inner network updates per outer step; null = the reference schedule's (``distill.schedule``)."""
    inner_batch: int = _range(256, 1)
    """Batch size of the inner training of the network (SGD) on the regenerated synthetic set."""
    net_lr: float = _range(1e-3, 0.0)
    """Learning rate of the inner training of the network (SGD)."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """Optimiser of the gm/dm/tm point tensors: ``adam`` (paper Table 7) or ``sgd`` (the image codebases)."""
    lr: float | None = _range(None, 0.0)
    """Synthetic-data learning rate; null = ``adam_lr`` with Adam (also the dd3d generator), or with SGD the
    method's ``sgd_lr``.
    """
    adam_lr: float = _range(1e-3, 0.0)
    """Adam learning rate of the synthetic data (gm/dm/tm point tensors, the dd3d generator) when ``lr`` is
    null (paper Table 7).
    """
    momentum: float = _range(0.5, 0.0, 1.0)
    """SGD momentum of the point tensors."""
    weight_decay: float = _range(5e-4, 0.0)
    """Adam weight decay of the dd3d generator (not applied to point tensors)."""
    lr_step: int | None = _range(None, 1)
    """StepLR period of the generator in iterations; null = one step at half of ``iterations`` (the release;
    Table 7 lists every 100 of 400).
    """
    lr_gamma: float = _range(0.1, 0.0, 1.0)
    """StepLR factor of the generator."""
    net_lr_step: int | None = _range(None, 1)
    """StepLR period of the inner network's SGD in inner epochs of an iteration; null = one step at half of
    outer × inner (the release).
    """
    net_lr_gamma: float = _range(0.1, 0.0, 1.0)
    """StepLR factor of the inner network's SGD."""
    real_sampling: Literal["fresh", "fixed"] = "fresh"
    """``fresh`` (the release): every real batch takes a new random subset of ``resolution`` points of each
    cloud at ``data.resolution``, re-normalised; ``fixed``: one subset per cloud, drawn once.
    """
    init_clouds: Literal["random", "herding"] = "random"
    """Real clouds that start gm/dm/tm/sadm: ``random`` (DC) or ``herding``."""
    augment_real: bool = True
    """Augment the real batches while matching."""
    checkpoint_every: int = _range(10, 1)
    """Iterations between checkpoints."""
    snapshot_every: int = _range(0, 0)
    """Every this many iterations (0: never) the run as it stands is also written to ``snapshots/it<N>/`` of
    the run folder, as a run folder of its own (synthetic set, generator, ``distill.json`` with
    ``iterations: N``), so ``dd3d eval --synthetic RUN/snapshots/it<N>`` measures accuracy along one run and
    ``dd3d plot RUN`` then draws it against iterations.
    """
    part_matching: Literal["alternate", "whole", "part"] = "alternate"
    """Segmentation: ``alternate`` (whole-shape GM on even outer steps, per-part GM of Eq. 14 on odd ones, as
    the reference), ``whole`` or ``part``.
    """
    batchnorm_clouds: int = _range(8, 1)
    """Networks with BatchNorm (PointNetSeg) take their statistics from this many real clouds per class
    before each matching step, then keep them frozen.
    """
    sgd_lr: SGDRatesConfig = field(default_factory=SGDRatesConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    real_grad: Literal["analytic", "autograd"] = "analytic"
    """How the (detached) gradient of the real clouds' loss is computed while gradient matching: ``analytic``
    writes out the weight gradients of the classification PointNet (no autograd graph; same values to
    float rounding, faster on CPU; other backbones and segmentation use autograd); ``autograd``: one
    autograd pass per class. See docs/results.md "Matching speed".
    """
    class_batching: Literal["auto", "loop", "batched"] = "auto"
    """Gradient matching of the classification PointNet: ``loop`` computes each class's real and synthetic
    gradients in turn (least memory; faster on CPU); ``batched`` all classes of an outer step in one
    forward/backward per side (per-class weight gradients as grouped products, TF32 allowed on CUDA);
    ``auto`` = batched on CUDA, loop on the CPU. Other backbones and per-part segmentation steps loop. Batched
    sums are float32, not class by class in float64, so under torchrun they depend on the split of the
    classes to float rounding.
    """
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    tm: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    sadm: SADMConfig = field(default_factory=SADMConfig)


@dataclass
class EvalConfig(TrainConfig):
    """Training fresh networks on a synthetic set and testing on the real test split (Table 8).

    Inherits every ``train.*`` setting with the paper's validation defaults: Adam lr 1e-3, batch 8,
    200 epochs, wd 5e-4, StepLR ×0.1 every 100 epochs. ``test_every`` > 0 also tests every that many
    epochs to report the best-epoch accuracy (test-set selection, as the released code prints).
    An interrupted evaluation continues where it stopped when run again with the same settings
    (finished runs, and the running one's state every ``checkpoint_every`` epochs, are kept in the
    output folder).

    ``protocol`` names a preset of the training values (:data:`EVAL_PROTOCOLS`), applied on load to
    every key the config does not set itself: ``dd3d`` (these defaults) or ``sadm`` (the SADM paper's:
    SGD lr 0.01 momentum 0.9 wd 5e-4, 500 epochs, ×0.1 at epoch 250, batch 8). Both keep the
    ``augment`` settings (SADM does not state its augmentation) and report the final epoch.
    """

    protocol: Literal["dd3d", "sadm"] = "dd3d"
    """Preset of the training values: ``dd3d`` (Table 8) or ``sadm`` (the SADM paper's: SGD lr 0.01, momentum
    0.9, wd 5e-4, 500 epochs, ×0.1 at 250, batch 8); explicit ``eval.*`` keys override it;
    ``metrics.json`` records it.
    """
    checkpoint_every: int = _range(10, 1)
    epochs: int = _range(200, 1)
    batch_size: int = _range(8, 1)
    scheduler: Literal["cosine", "step", "none"] = "step"
    resolution: int = _range(1024, 1)
    """Points per synthetic and test cloud in evaluation (independent of ``distill.resolution``)."""
    runs: int = _range(5, 1)
    """Networks trained per synthetic set."""
    test_every: int = _range(10, 0)
    """Also test every N epochs for the best-epoch number (0 = final epoch only; 1 = the released
    code's per-epoch max).
    """


#: ``eval.protocol`` -> the ``eval.*`` training values it sets (unless the config gives them)
EVAL_PROTOCOLS: dict[str, dict[str, Any]] = {
    "dd3d": {},
    "sadm": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "scheduler": "step",
             "step_size": 250, "gamma": 0.1, "epochs": 500, "batch_size": 8},
}


@dataclass
class Config:
    """The whole run configuration."""

    task: Literal["classification", "segmentation"] = "classification"
    """``classification`` (a label per cloud) or ``segmentation`` (a part label per point)."""
    seed: int = _range(0, 0)
    """Seed for model initialisation, shuffling and augmentation."""
    device: str = "auto"
    """``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:N``."""
    threads: int = _range(0, 0)
    """CPU threads for torch (0 = torch's default)."""
    out: str = "runs"
    """Default folder for outputs."""
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _type_name(tp: Any) -> str:
    if tp == LoopSchedule:
        return "a mapping of cpc (integer >= 1) to [outer, inner] (integers, outer >= 1, inner >= 0)"
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if _is_optional(tp):
        return _type_name(_strip_optional(tp)) + " or null"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _is_optional(tp: Any) -> bool:
    return get_origin(tp) in (typing.Union, types.UnionType) and type(None) in get_args(tp)


def _strip_optional(tp: Any) -> Any:
    (inner,) = [a for a in get_args(tp) if a is not type(None)]
    return inner


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _check_value(value: Any, tp: Any, meta: typing.Mapping[str, Any], where: str) -> Any:
    """Return ``value`` converted to ``tp`` or raise a one-line ConfigError."""
    expected = _type_name(tp)
    if _is_optional(tp):
        if value is None:
            return None
        tp = _strip_optional(tp)
    if get_origin(tp) is Literal:
        if value not in get_args(tp):
            close = difflib.get_close_matches(str(value), [str(a) for a in get_args(tp)], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: got {value!r}, expected {expected}{hint}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: got {value!r}, expected {expected}")
        return value
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)  # PyYAML reads 1e-5 (no dot) as a string; accept it as the number it is
    if tp in (int, float):
        ok = isinstance(value, int) and not isinstance(value, bool)
        if tp is float:
            ok = ok or isinstance(value, float)
        if not ok:
            raise ConfigError(f"{where}: got {value!r}, expected {expected}")
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]" if lo is not None else f"<= {hi}"
            raise ConfigError(f"{where}: got {value!r}, expected {expected} {bounds}")
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: got {value!r}, expected {expected}")
        return value
    if tp == LoopSchedule:
        return _check_schedule(value, where)
    raise TypeError(f"unsupported config field type {tp!r} at {where}")  # a bug, not bad input


def _is_count(value: Any, lo: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lo


def _check_schedule(value: Any, where: str) -> LoopSchedule:
    """A :data:`LoopSchedule` from a YAML mapping ``{cpc: [outer, inner]}`` (a ``--set`` dotted key gives the
    cpc as a string of digits), or a one-line ConfigError."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: got {value!r}, expected {_type_name(LoopSchedule)}, e.g. {{1: [5, 5]}}")
    table: LoopSchedule = {}
    for key, entry in value.items():
        cpc = int(key) if isinstance(key, str) and key.strip().isdigit() else key
        if not _is_count(cpc, 1):
            raise ConfigError(f"{where}: got the key {key!r}, expected a cpc (an integer >= 1)")
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2
                and _is_count(entry[0], 1) and _is_count(entry[1], 0)):
            raise ConfigError(f"{where}.{key}: got {entry!r}, expected [outer, inner] (integers, outer >= 1, "
                              "inner >= 0)")
        table[cpc] = (entry[0], entry[1])
    return table


def _build(cls: type, raw: Any, where: str, prefix: str) -> Any:
    """Build dataclass ``cls`` from mapping ``raw``, validating every key."""
    if not isinstance(raw, dict):
        name = prefix.rstrip(".") or "the top level"
        raise ConfigError(f"{where}: {name} must be a mapping of keys to values, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            allowed = ", ".join(fields)
            raise ConfigError(f"{where}: unknown key '{prefix}{key}'{hint} (allowed: {allowed})")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, raw[name], where, f"{prefix}{name}.")
        elif tp == LoopSchedule:  # the entries given replace the default's of the same cpc
            table = {**f.default_factory(), **_check_value(raw[name], tp, f.metadata, f"{where}: {prefix}{name}")}
            values[name] = dict(sorted(table.items()))
        else:
            values[name] = _check_value(raw[name], tp, f.metadata, f"{where}: {prefix}{name}")
    return cls(**values)


def dataset_label(cfg: "Config") -> str:
    """How results name the dataset: the folder name of ``data.root`` (e.g. ``modelnet10_hdf5_1024``,
    which the ``modelnet40`` loader reads), or the built-in set's name."""
    return Path(cfg.data.root).name if cfg.data.root else cfg.data.name


def rotator_kind(cfg: "Config") -> str:
    """The rotator actually used: ``auto`` resolves to ``learned`` for rotated data, else ``none``."""
    kind = cfg.model.rotator.kind
    if kind == "auto":
        return "learned" if cfg.data.setting == "rotated" else "none"
    return kind


#: ``data.up_axis: auto`` per dataset: the usual convention of each loader's source. y for the PointNet
#: h5 release (``modelnet40_ply_hdf5_2048``), PointNet++'s txt release, ScanObjectNN and ShapeNet-part;
#: y for the built-in ``shapes`` (generated upright along y, :mod:`dd3d.data.shapes`) and for folders
#: of clouds (most exported clouds follow the PointNet convention). Clouds sampled from ModelNet's
#: original ``.off`` meshes (e.g. ``modelnet10_hdf5_1024``, read by the ``modelnet40`` loader) have z
#: up: their configs say ``up_axis: z``.
DEFAULT_UP_AXIS = {"shapes": "y", "modelnet40": "y", "scanobjectnn": "y", "shapenet_part": "y", "folder": "y"}


def resolve_up_axis(data: DataConfig, reported: str | None = None) -> str:
    """The up axis (``"x"``, ``"y"`` or ``"z"``) of the configured dataset's clouds.

    An explicit ``data.up_axis`` wins; for ``auto``, an axis ``reported`` by the loader for the files
    it read (e.g. z for a folder of ModelNet ``.off`` meshes), else :data:`DEFAULT_UP_AXIS`.
    """
    if data.up_axis != "auto":
        return data.up_axis
    return reported or DEFAULT_UP_AXIS[data.name]


def _apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply ``dotted.key=value`` (value parsed as YAML) onto the raw mapping in place."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment}: expected dotted.key=value, e.g. data.resolution=256")
    key, text = assignment.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; one-line errors for unreadable/invalid files."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{line}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Load ``path`` (or the defaults), apply ``--set`` overrides, validate, and resolve paths.

    A relative ``data.root`` is resolved against the config file's folder, so configs work from any
    working directory.
    """
    raw = read_yaml(Path(path)) if path is not None else {}
    where = str(path) if path is not None else "config"
    for assignment in overrides:
        _apply_override(raw, assignment)
    if overrides:
        where += " (with --set)"
    cfg = _build(Config, raw, where, "")
    _apply_eval_protocol(cfg, raw.get("eval") or {})
    _check_consistency(cfg, where)
    if cfg.data.root is not None and path is not None and not Path(cfg.data.root).is_absolute():
        anchored = (Path(path).resolve().parent / cfg.data.root).resolve()
        cfg.data.root = str(anchored)
    return cfg


def _apply_eval_protocol(cfg: Config, given: typing.Mapping[str, Any]) -> None:
    """Set the ``eval.protocol`` preset's training values, except the keys in ``given`` (set explicitly)."""
    for key, value in EVAL_PROTOCOLS[cfg.eval.protocol].items():
        if key not in given:
            setattr(cfg.eval, key, value)


def _check_consistency(cfg: Config, where: str) -> None:
    """Cross-field rules that a single field's type cannot express."""
    if cfg.augment.scale_low > cfg.augment.scale_high:
        raise ConfigError(
            f"{where}: augment.scale_low ({cfg.augment.scale_low}) must be <= "
            f"augment.scale_high ({cfg.augment.scale_high})"
        )
    if cfg.task == "segmentation" and cfg.data.name not in ("shapes", "shapenet_part"):
        raise ConfigError(
            f"{where}: task 'segmentation' needs data.name 'shapes' or 'shapenet_part', "
            f"got {cfg.data.name!r}"
        )
    if cfg.data.name != "shapes" and cfg.data.root is None:
        raise ConfigError(f"{where}: data.root is required for dataset {cfg.data.name!r}")
    if not (cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda")):
        raise ConfigError(f"{where}: device: got {cfg.device!r}, expected 'auto', 'cpu' or 'cuda[:N]'")


class _ConfigDumper(yaml.SafeDumper):
    """The safe dumper, writing tuples (a schedule's ``(outer, inner)``) inline: ``10: [20, 10]``."""


_ConfigDumper.add_representer(
    tuple, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True))


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text (written to every run folder as config.yaml)."""
    return yaml.dump(cfg.to_dict(), Dumper=_ConfigDumper, sort_keys=False)
