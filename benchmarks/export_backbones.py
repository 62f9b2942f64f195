"""Every backbone through ``dckd export``: each format, float32 and float16, and the checks' differences.

    python benchmarks/export_backbones.py --out benchmarks/results/export.json              # tiny configs
    python benchmarks/export_backbones.py --presets swinir_s_x2,nafnet_width16 --out ...    # paper-size presets
    python benchmarks/export_backbones.py --exporters torchscript,dynamo ...                # both ONNX exporters

Networks get fixed random weights (NAFNet's zero-initialised beta/gamma are drawn too, or its blocks are the
identity); ``nafnet_tlc`` is NAFNet after ``to_local`` with a small training size, so the checks include the
local pooling branch. Each export is ``dckd.apps.export.export_network``: the same checks as ``dckd export``.
Prints a Markdown table (largest difference over the checked sizes, export seconds) and writes the JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import torch

from dckd.apps.export import export_network
from dckd.errors import ExportError
from dckd.eval.profile import device_description
from dckd.models.backbones import BACKBONES, PRESETS
from dckd.models.backbones.nafnet import to_local

TINY = {  # also the configurations tests/test_export.py checks
    # depths [2, 2]: the second block of each layer shifts its windows, so the shift mask is exported too
    "swinir": dict(
        upscale=2,
        in_chans=3,
        img_size=16,
        window_size=4,
        img_range=1.0,
        depths=[2, 2],
        embed_dim=12,
        num_heads=[2, 2],
        mlp_ratio=2,
        upsampler="pixelshuffle",
        resi_connection="1conv",
        drop_path_rate=0.0,
    ),
    "rcan": dict(num_in_ch=3, num_out_ch=3, num_feat=16, num_group=2, num_block=2, upscale=2),
    "edsr": dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=3),
    "nafnet": dict(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1, 1], dec_blk_nums=[1, 1, 1]),
    "restormer": dict(
        inp_channels=3,
        out_channels=3,
        dim=8,
        num_blocks=[1, 1, 1, 1],
        num_refinement_blocks=1,
        heads=[1, 2, 4, 8],
        ffn_expansion_factor=2.66,
    ),
}
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}


def build(backbone: str, options: dict, tlc_train_size: int | None) -> torch.nn.Module:
    torch.manual_seed(0)
    network = BACKBONES[backbone](**options)
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if name.endswith(("beta", "gamma")):
                parameter.normal_(0, 0.5)
    if tlc_train_size:
        to_local(network, train_size=(1, 3, tlc_train_size, tlc_train_size))
    return network.eval()


def networks(presets: list[str]) -> list[tuple[str, str, dict, int | None]]:
    """(name, backbone, options, TLC training size or None)."""
    if presets:
        chosen = [(name, *PRESETS[name], None) for name in presets]
        chosen += [(f"{name}+tlc64", *PRESETS[name], 64) for name in presets if PRESETS[name][0] == "nafnet"]
        return chosen
    chosen = [(name, name, options, None) for name, options in TINY.items()]
    return chosen + [("nafnet_tlc", "nafnet", TINY["nafnet"], 16)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="", help="comma-separated preset names (default: the tiny configs)")
    parser.add_argument("--exporters", default="torchscript", help="ONNX exporters: torchscript,dynamo")
    parser.add_argument("--formats", default="onnx,torchscript,safetensors")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="JSON file for the results")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, backbone, options, tlc in networks([p for p in arguments.presets.split(",") if p]):
            network = build(backbone, options, tlc)
            runs = [
                (format, exporter, half)
                for format in arguments.formats.split(",")
                for exporter in (arguments.exporters.split(",") if format == "onnx" else ["torchscript"])
                for half in (False, True)
                if not (format == "safetensors" and tlc)  # TLC is no weight
            ]
            for format, exporter, half in runs:
                path = Path(folder) / f"{name}-{exporter}-{half}{SUFFIX[format]}"
                start = time.perf_counter()
                row = {"network": name, "format": format, "exporter": exporter if format == "onnx" else None}
                row["dtype"] = "float16" if half else "float32"
                try:
                    result = export_network(
                        network,
                        path,
                        format,
                        record={"backbone": backbone, "options": options},
                        half=half,
                        exporter=exporter if format == "onnx" else "torchscript",
                        say=lambda text: None,
                    )
                    row["checks"] = {"x".join(map(str, check.shape)): check.max_difference for check in result.checks}
                    row["max_difference"] = result.max_difference
                    row["opset"] = result.opset
                except ExportError as error:
                    row["error"] = str(error)
                row["seconds"] = round(time.perf_counter() - start, 2)
                print(json.dumps(row), flush=True)
                rows.append(row)
    document = {
        "date": datetime.date.today().isoformat(),
        "device": device_description(torch.device("cpu")),
        "threads": arguments.threads,
        "torch": torch.__version__,
        "rows": rows,
    }
    print(f"\n{document['date']}, {document['device']}, {arguments.threads} thread(s), torch {torch.__version__}\n")
    print("| network | format | exporter | dtype | checked inputs | largest difference | seconds |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        outcome = f"{row['max_difference']:.1e}" if "error" not in row else "FAILED: " + row["error"][:80]
        checks = ", ".join(row.get("checks", {}))
        print(
            f"| {row['network']} | {row['format']} | {row['exporter'] or '-'} | {row['dtype']} | {checks} | "
            f"{outcome} | {row['seconds']} |"
        )
    if arguments.out:
        Path(arguments.out).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
