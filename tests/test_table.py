"""``dd3d table``: Table 1/2 layouts (methods as columns, a row per metric) and Table 3 (backbones)."""
from __future__ import annotations

import json
from pathlib import Path

from dd3d.table import collect, render_csv, render_markdown


def test_table_has_a_row_per_segmentation_metric(tmp_path: Path) -> None:
    for method, base in (("gm", 0.5), ("dd3d", 0.6)):
        record = {"method": method, "cpc": 1, "dataset": "shapenet_part", "setting": "aligned"}
        for k, (metric, shift) in enumerate((("oa", 0.3), ("instance_miou", 0.1), ("class_miou", 0.0))):
            record.update({f"{metric}_mean": base + shift, f"{metric}_std": 0.0,
                           f"{metric}_runs": [base + shift - 0.01, base + shift + 0.01]})
        (tmp_path / method).mkdir()
        (tmp_path / method / "metrics.json").write_text(json.dumps(record))
    records = collect([tmp_path / "gm", tmp_path / "dd3d"])
    lines = render_markdown(records).splitlines()
    assert lines[0] == "| dataset | setting | cpc | metric | gm | dd3d |"
    assert lines[2] == "| shapenet_part | aligned | 1 | OA | 80.00 ± 1.00 | **90.00 ± 1.00** |"
    assert lines[3].startswith("| shapenet_part | aligned | 1 | instance mIoU | 60.00 ± 1.00 |")
    assert lines[4].startswith("| shapenet_part | aligned | 1 | class mIoU | 50.00 ± 1.00 |")
    assert render_csv(records).splitlines()[3] == "shapenet_part,aligned,1,class_miou,50.00,1.00,60.00,1.00"


def test_table_by_backbone_has_the_cross_architecture_layout(tmp_path: Path) -> None:
    folders = []
    for method, backbone, size, oa in (("gm", "pointnet", "full", 0.5), ("gm", "dgcnn", "small", 0.4),
                                       ("dd3d", "pointnet", "full", 0.7), ("dd3d", "dgcnn", "small", 0.6)):
        folder = tmp_path / f"{method}-{backbone}"
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({
            "method": method, "cpc": 10, "dataset": "shapes", "setting": "aligned", "backbone": backbone,
            "backbone_size": size, "oa_mean": oa, "oa_std": 0.0, "oa_runs": [oa]}))
        folders.append(folder)
    lines = render_markdown(collect(folders), by="backbone").splitlines()
    assert lines[0] == "| dataset | setting | cpc | metric | method | pointnet | dgcnn (small) |"
    assert lines[2] == "| shapes | aligned | 10 | OA | gm | **50.00 ± 0.00** | 40.00 ± 0.00 |"
    assert lines[3] == "| shapes | aligned | 10 | OA | dd3d | **70.00 ± 0.00** | 60.00 ± 0.00 |"
