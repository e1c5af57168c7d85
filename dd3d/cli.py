"""The ``dd3d`` command line: thin wrappers that parse flags, call the library and print.

Bad input (config, data, flags, run folders) ends with one line ``dd3d: error: ...`` and exit
status 2; ``--debug`` shows the full traceback instead. Ctrl-C exits with status 130 after the
command has saved what it can resume from.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from dd3d.config import Config, dump_config, load_config
from dd3d.errors import DD3DError

RUN_CONFIG = "config.yaml"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_config_flags(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--config", type=Path, required=required, metavar="FILE",
                        help="YAML config file (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set data.resolution=256 (repeatable)")


def cmd_data(args: argparse.Namespace) -> int:
    """Print the dataset summary (class table, counts, points, parts)."""
    from dd3d.data import load_dataset

    cfg = load_config(args.config, args.overrides)
    splits = load_dataset(cfg)
    summary = {
        "dataset": cfg.data.name,
        "root": cfg.data.root,
        "task": cfg.task,
        "num_classes": splits.train.num_classes,
        "class_names": splits.train.class_names,
        "train": len(splits.train),
        "test": len(splits.test),
        "train_per_class": splits.train.counts(),
        "test_per_class": splits.test.counts(),
        "points": int(splits.train.points.shape[1]),
        "layout": splits.train.layout,
        "train_source": splits.train.source,
        "test_source": splits.test.source,
    }
    if splits.train.is_segmentation:
        import numpy as np

        present = np.union1d(np.unique(splits.train.parts), np.unique(splits.test.parts))
        summary["parts"] = present.tolist()
        summary["category_parts"] = {splits.train.class_names[c]: ids
                                     for c, ids in sorted(splits.train.category_parts.items())}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{cfg.data.name}: {summary['num_classes']} classes, {summary['train']} train / "
          f"{summary['test']} test clouds, {summary['points']} points per cloud "
          f"({cfg.data.setting}, canonical={cfg.data.canonical})")
    print(f"  layout: {summary['layout']}")
    print(f"  train:  {summary['train_source']}")
    print(f"  test:   {summary['test_source']}")
    width = max(len(n) for n in summary["class_names"])
    for i, name in enumerate(summary["class_names"]):
        line = f"  {i:3d} {name:<{width}}  train {summary['train_per_class'][i]:6d}  test {summary['test_per_class'][i]:6d}"
        if "category_parts" in summary:
            line += f"  parts {summary['category_parts'][name]}"
        print(line)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Convert the configured dataset into an HDF5 release layout once (resumable)."""
    from dd3d.data.convert import prepare_dataset

    if args.points < 1:
        raise DD3DError(f"--points: got {args.points}, expected an integer >= 1")
    cfg = load_config(args.config, args.overrides)
    try:
        summary = prepare_dataset(cfg, args.out, args.points)
    except KeyboardInterrupt:
        print("\ninterrupted: the finished chunks are kept; run the same command again to continue", file=sys.stderr)
        raise
    counts = ", ".join(f"{size} {split}" for split, size in summary["splits"].items())
    if summary["already_prepared"]:
        print(f"{args.out}: already prepared from this source ({counts}); nothing to do")
    else:
        print(f"{cfg.data.name} ({counts}) -> {args.out} ({summary['layout']}, {summary['points']} points)")
    print(f"load it with: --set data.name={summary['loader']} --set data.root={args.out.resolve()}")
    return 0


def _resumed_config(out: Path, overrides: list[str]) -> Config:
    """The config of the run folder ``out`` (``--resume``), after removing temporaries of writes that a
    killed process left behind."""
    from dd3d.io import remove_temporaries

    if not (out / RUN_CONFIG).is_file():
        raise DD3DError(f"--resume {out}: not a dd3d run folder (no {RUN_CONFIG})")
    remove_temporaries(out)
    return load_config(out / RUN_CONFIG, overrides)


def _prepare_out(out: Path, cfg: Config) -> None:
    from dd3d.io import write_text

    out.mkdir(parents=True, exist_ok=True)
    write_text(out / RUN_CONFIG, dump_config(cfg))


def cmd_train(args: argparse.Namespace) -> int:
    """Train the configured backbone on the full training split and test it."""
    from dd3d.data import load_dataset
    from dd3d.device import describe, resolve_device
    from dd3d.io import load_checkpoint, write_json
    from dd3d.metrics import summary_line, with_category_names
    from dd3d.train import Task, fit, make_rotator, new_run

    if args.resume is not None:
        out = args.resume
        cfg = _resumed_config(out, args.overrides)
    elif args.config is None or args.out is None:
        raise DD3DError("dd3d train: needs --config FILE and --out DIR (or --resume DIR)")
    else:
        out, cfg = args.out, load_config(args.config, args.overrides)
    device = resolve_device(cfg.device, cfg.threads)
    splits = load_dataset(cfg)
    task = Task.of(cfg.task, splits.train)
    run = new_run(task, cfg.model.name, cfg.train, device, cfg.seed, make_rotator(cfg), cfg.model.size)
    checkpoint = out / "checkpoint.pt"
    if args.resume is not None:
        run.load_state_dict(load_checkpoint(checkpoint))
        print(f"resuming {out} at epoch {run.epoch}/{cfg.train.epochs}", file=sys.stderr)
    _prepare_out(out, cfg)
    log_file = (out / "train.log").open("a")
    log_file.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {cfg.data.name} {cfg.task} on {describe(device)}\n")

    def log(line: str) -> None:
        log_file.write(line + "\n")
        log_file.flush()

    start = time.perf_counter()
    try:
        metrics = fit(run, task, splits.train, splits.test, cfg.train, cfg.augment, device,
                      checkpoint=checkpoint, log=log)
    except KeyboardInterrupt:
        print(f"\ninterrupted: checkpoint saved at epoch {run.epoch}; continue with "
              f"dd3d train --resume {out}", file=sys.stderr)
        raise
    finally:
        log_file.close()
    seconds = time.perf_counter() - start
    result = {**with_category_names(metrics, splits.test.class_names), "epochs": cfg.train.epochs,
              "train_seconds": round(seconds, 2), "device": describe(device), "train_clouds": len(splits.train),
              "test_clouds": len(splits.test)}
    write_json(out / "metrics.json", result)
    print(summary_line(metrics) + f"  ({seconds:.1f} s, {describe(device)})")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    """Distil the training split with one method into a run folder (under torchrun: every process;
    rank 0 prints)."""
    from dd3d.distill.distributed import launched_rank
    from dd3d.distill.run import distill

    if args.resume is not None:
        out, resume = args.resume, True
        cfg = _resumed_config(out, args.overrides)
    elif args.config is None or args.out is None:
        raise DD3DError("dd3d distill: needs --config FILE and --out DIR (or --resume DIR)")
    else:
        overrides = list(args.overrides)
        if args.cpc is not None and args.cpc < 1:
            raise DD3DError(f"--cpc: got {args.cpc}, expected an integer >= 1")
        if args.method is not None:
            overrides.append(f"distill.method={args.method}")
        if args.cpc is not None:
            overrides.append(f"distill.cpc={args.cpc}")
        out, resume, cfg = args.out, False, load_config(args.config, overrides)
    main_process = launched_rank() == 0
    try:
        summary = distill(cfg, out, resume=resume)
    except KeyboardInterrupt:
        if main_process:
            print(f"\ninterrupted: checkpoint saved; continue with dd3d distill --resume {out}", file=sys.stderr)
        raise
    if main_process:
        processes = f", {summary['processes']} processes" if summary["processes"] > 1 else ""
        print(f"{summary['method']} cpc={summary['cpc']}: {summary['synthetic_clouds']} clouds -> {out} "
              f"({summary['wall_time_s']:.1f} s{processes}, peak {summary['peak_memory_bytes'] / 2**30:.2f} GiB)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Train fresh networks on a distilled set and test them on the real test split."""
    from dd3d.evaluate import evaluate_synthetic

    if args.runs is not None and args.runs < 1:
        raise DD3DError(f"--runs: got {args.runs}, expected an integer >= 1")
    overrides = list(args.overrides) + ([f"eval.runs={args.runs}"] if args.runs is not None else [])
    cfg = load_config(args.config, overrides)
    out = args.out or args.synthetic / "eval"
    m = evaluate_synthetic(cfg, args.synthetic, out, backbone=args.backbone)
    scores = f"OA {100 * m['oa_mean']:.2f} ± {100 * m['oa_std']:.2f}"
    if "instance_miou_mean" in m:
        scores += (f", instance mIoU {100 * m['instance_miou_mean']:.2f} ± {100 * m['instance_miou_std']:.2f}"
                   f", class mIoU {100 * m['class_miou_mean']:.2f} ± {100 * m['class_miou_std']:.2f}")
    print(f"{m['method']} cpc={m['cpc']} {m['backbone']}: {scores} (final epoch, {m['runs']} runs); best-epoch OA "
          f"{100 * m['oa_best_epoch_mean']:.2f} (test-set selection) -> {out / 'metrics.json'}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Regenerate a dd3d run's synthetic set at any resolution."""
    import torch

    from dd3d.synthetic import GENERATOR_FILE, LoadedGenerator, check_output_suffix, write_any

    if args.points < 1:
        raise DD3DError(f"--points: got {args.points}, expected an integer >= 1")
    check_output_suffix(args.out)
    path = args.run / GENERATOR_FILE
    if not args.run.is_dir():
        raise DD3DError(f"--run {args.run}: run folder not found")
    loaded = LoadedGenerator(path)
    synthetic = loaded.generate(args.points, torch.Generator().manual_seed(args.seed))
    write_any(args.out, synthetic, loaded.class_names, loaded.category_parts)
    print(f"{len(synthetic.labels)} clouds x {args.points} points -> {args.out}")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    """Collect evaluation results into a Table-1/2/3-style markdown (and CSV) table."""
    from dd3d.table import collect, render_csv, render_markdown
    from dd3d.io import write_text

    rows = collect(args.runs)
    render = render_csv if args.out is not None and args.out.suffix == ".csv" else render_markdown
    text = render(rows, by=args.by)
    if args.out is not None:
        write_text(args.out, text)
    print(text, end="")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Draw the paper's plots that apply to run folders and benchmark folders (PNG + PDF)."""
    from dd3d.plots import plot_folders

    for path in plot_folders(args.folders, args.out):
        print(path)
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "data": (cmd_data, "load the configured dataset and print its summary"),
    "prepare": (cmd_prepare, "convert the configured dataset once into an HDF5 layout that loads in seconds"),
    "train": (cmd_train, "train a backbone on the full training set and test it"),
    "distill": (cmd_distill, "distil the training set with one method (dd3d, gm, dm, tm, coresets)"),
    "eval": (cmd_eval, "train fresh networks on a distilled set and test on the real test split"),
    "generate": (cmd_generate, "regenerate a dd3d run's synthetic set at any resolution"),
    "table": (cmd_table, "collect evaluation results into a Table-1-style markdown/CSV table"),
    "plot": (cmd_plot, "draw loss curves, accuracy vs iterations, time/memory and cross-architecture plots "
                       "of run or benchmark folders (PNG + PDF)"),
}
#: commands that live in the viewer package now (they need Open3D's renderer, and the engine never
#: imports the viewer) -> what to run instead; ``dd3d NAME`` says so in one line
MOVED = {"render": "dd3d-render (python -m viewer.render), with the same flags"}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="dd3d", description="Point cloud dataset distillation (DD3D) and baselines.",
                            epilog="Figures of point clouds: dd3d-render (the viewer package); the lab: dd3d-lab.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=ArgumentParser)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if name == "data":
            add_config_flags(p)
            p.add_argument("--json", action="store_true", help="print one JSON object")
        elif name == "prepare":
            from dd3d.data.convert import POINTS

            add_config_flags(p)
            p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write (must not exist "
                           "or be empty; rerun the same command to continue an interrupted conversion)")
            p.add_argument("--points", type=int, default=POINTS, help=f"points per cloud (default {POINTS})")
        elif name in ("train", "distill"):
            add_config_flags(p, required=False)
            p.add_argument("--out", type=Path, metavar="DIR", help="run folder to write")
            p.add_argument("--resume", type=Path, metavar="DIR", help="continue an interrupted run folder")
            if name == "distill":
                from dd3d.distill import METHODS

                p.add_argument("--method", choices=list(METHODS), help="method (default: distill.method)")
                p.add_argument("--cpc", type=int, help="synthetic clouds per class (default: distill.cpc)")
        elif name == "eval":
            add_config_flags(p)
            p.add_argument("--synthetic", type=Path, required=True, metavar="DIR", help="a dd3d distill run folder")
            p.add_argument("--runs", type=int, help="evaluation runs (default: eval.runs)")
            p.add_argument("--backbone", help="backbone to train (default: model.name)")
            p.add_argument("--out", type=Path, metavar="DIR", help="where to write metrics.json (default: DIR/eval)")
        elif name == "generate":
            p.add_argument("--run", type=Path, required=True, metavar="DIR", help="a dd3d run folder (generator.pt)")
            p.add_argument("--points", type=int, required=True, help="points per cloud")
            p.add_argument("--out", type=Path, required=True, metavar="FILE", help="output .h5, .ply or .npz")
            p.add_argument("--seed", type=int, default=0, help="noise seed")
        elif name == "table":
            p.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="evaluation folders (metrics.json)")
            p.add_argument("--out", type=Path, metavar="FILE", help="write .md or .csv")
            p.add_argument("--by", choices=["method", "backbone"], default="method",
                           help="columns: methods (Tables 1/2) or evaluation backbones (Table 3)")
        elif name == "plot":
            p.add_argument("folders", type=Path, nargs="+", metavar="RUN_OR_BENCH_DIR",
                           help="distill run folders (loss curves) or benchmark output folders (their runs' plots)")
            p.add_argument("--out", type=Path, metavar="DIR",
                           help="folder for the figures (default: the folder given, or the folders' common parent)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)  # --debug is the only global flag
    if command in MOVED:
        print(f"dd3d: error: dd3d {command} moved to the viewer package: run {MOVED[command]}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    handler = COMMANDS[args.command][0]
    try:
        return handler(args)
    except DD3DError as exc:
        if args.debug:
            raise
        print(f"dd3d: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
