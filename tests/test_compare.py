"""`dckd compare`: statistics over runs equal those computed by hand from `dckd test`'s scores; hostile and
mistaken inputs are clear errors that write nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from conftest import tiny_edsr
from file_tree import snapshot

from dckd.apps.cli import main
from dckd.engine.checkpoints import save_weights
from dckd.engine.setup import construct_network
from dckd.eval.statistics import paired_difference, summarize


def weights(folder: Path, name: str, seed: int, scale: int = 4) -> str:
    spec = tiny_edsr(scale=scale)
    torch.manual_seed(seed)
    network = construct_network(spec["backbone"], spec["options"])
    path = folder / f"{name}.pth"
    save_weights(path, network.state_dict(), None, spec)
    return str(path)


def scores(path: str, dataset: str, tmp_path: Path) -> dict:
    """What `dckd test` reports for one weights file."""
    out = tmp_path / f"test_{Path(path).stem}.json"
    assert main(["test", path, dataset, "--device", "cpu", "--json", str(out)]) == 0
    return next(iter(json.loads(out.read_text())["datasets"].values()))


def test_compare_statistics_are_those_of_the_test_scores(tmp_path: Path, capsys) -> None:
    first = [weights(tmp_path, f"a{seed}", seed) for seed in (0, 1, 2)]
    second = [weights(tmp_path, f"b{seed}", seed + 10) for seed in (0, 1, 2)]
    out = tmp_path / "compare.json"
    arguments = ["compare", "bundled:val", "--runs", "A=" + ",".join(first), "--runs", "B=" + ",".join(second)]
    assert main([*arguments, "--device", "cpu", "--json", str(out), "--markdown", str(tmp_path / "c.md")]) == 0
    printed = capsys.readouterr().out
    document = json.loads(out.read_text())
    evaluation = document["evaluations"]["bundled-val"]
    tested = {path: scores(path, "bundled:val", tmp_path) for path in first + second}
    a = summarize([tested[path]["psnr"] for path in first])
    assert evaluation["methods"]["A"]["psnr"]["mean"] == pytest.approx(a.mean, abs=1e-9)
    assert evaluation["methods"]["A"]["psnr"]["std"] == pytest.approx(a.std, abs=1e-9)
    over_runs = paired_difference([tested[p]["psnr"] for p in second], [tested[p]["psnr"] for p in first])
    difference = evaluation["differences"]["B - A"]
    assert difference["over_seeds"]["mean"] == pytest.approx(over_runs.mean, abs=1e-9)
    assert difference["over_seeds"]["low"] == pytest.approx(over_runs.low, abs=1e-9)
    photos = [image["name"] for image in tested[first[0]]["images"]]
    per_photo = [
        [sum(tested[p]["images"][index]["psnr"] for p in group) / 3 for index in range(len(photos))]
        for group in (second, first)
    ]
    over_photos = paired_difference(*per_photo)
    assert difference["over_photos"]["count"] == len(photos) == evaluation["photos"]
    assert difference["over_photos"]["mean"] == pytest.approx(over_photos.mean, abs=1e-9)
    assert "| B - A |" in printed and (tmp_path / "c.md").read_text().strip() in printed
    assert document["runs"] == {"A": first, "B": second}


def test_unequal_numbers_of_runs_compare_over_photos_only(tmp_path: Path, capsys) -> None:
    a = [weights(tmp_path, f"a{seed}", seed) for seed in (0, 1)]
    b = [weights(tmp_path, "b0", 5)]
    assert main(["compare", "bundled:val", "--runs", "A=" + ",".join(a), "--runs", f"B={b[0]}", "--device", "cpu"]) == 0
    assert "| B - A | - (unequal numbers of runs) |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "runs, message",
    [
        (["A={a}", "A={b}"], r"label\(s\) \['A'\] are given more than once"),
        (["A={a}", "B={a}"], r"is listed twice \(A and B\)"),
        (["A={a}", "B={x2}"], r"do not share one scale .*x2.*x4|do not share one scale .*x4.*x2"),
        (["A={a}", "B={missing}"], r"missing\.pth"),
        (["A={a}", "B={text}"], r"text\.pth"),
    ],
)
def test_mistakes_are_errors_that_write_nothing(tmp_path: Path, capsys, runs, message) -> None:
    files = {"a": weights(tmp_path, "a", 0), "b": weights(tmp_path, "b", 1), "x2": weights(tmp_path, "x2", 2, scale=2)}
    files["missing"] = str(tmp_path / "missing.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    files["text"] = str(tmp_path / "text.pth")
    before = snapshot(tmp_path)
    arguments = ["compare", "bundled:val", "--device", "cpu", "--json", str(tmp_path / "out.json")]
    for group in runs:
        arguments += ["--runs", group.format(**files)]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and re.search(message, error), error
    assert snapshot(tmp_path) == before


def test_a_malformed_group_is_a_usage_error(tmp_path: Path, capsys) -> None:
    for group in ("A", "=w.pth", "A=", "A=w.pth,,v.pth"):
        with pytest.raises(SystemExit) as stop:
            main(["compare", "bundled:val", "--runs", group])
        assert stop.value.code == 2 and "LABEL=WEIGHTS" in capsys.readouterr().err


def test_results_never_replace_a_file_unasked(tmp_path: Path, capsys) -> None:
    a = weights(tmp_path, "a", 0)
    out = tmp_path / "out.json"
    out.write_text("mine")
    assert main(["compare", "bundled:val", "--runs", f"A={a}", "--device", "cpu", "--json", str(out)]) == 2
    assert out.read_text() == "mine" and "overwrite" in capsys.readouterr().err
    assert main(["compare", "bundled:val", "--runs", f"A={a}", "--device", "cpu", "--json", a]) == 2
    assert torch.load(a, weights_only=True)["params"], "the weights file is untouched"
    assert (
        main(["compare", "bundled:val", "--runs", f"A={a}", "--device", "cpu", "--json", str(out), "--overwrite"]) == 0
    )
    assert json.loads(out.read_text())["runs"] == {"A": [a]}
