"""`trainer export WEIGHTS --onnx F.onnx / --safetensors F.safetensors`."""
from __future__ import annotations

import click


@click.command("export")
@click.argument("weights", type=click.Path(dir_okay=False, exists=True))
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), default=None, help="Write an ONNX model.")
@click.option("--safetensors", "st_path", type=click.Path(dir_okay=False), default=None,
              help="Write the (EMA) generator as .safetensors.")
@click.option("--opset", type=click.IntRange(min=11), default=17, show_default=True, help="ONNX opset.")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Compare the ONNX model with torch using onnxruntime (when installed).")
def export(weights, onnx_path, st_path, opset, check):
    """Export a generator weight file (the EMA weights of a checkpoint) to ONNX and/or safetensors."""
    from trainer.checkpoint import WeightError
    from trainer.export import export_onnx, export_safetensors

    if not onnx_path and not st_path:
        raise click.UsageError("give --onnx FILE and/or --safetensors FILE")
    try:
        if st_path:
            export_safetensors(weights, st_path)
            click.echo(f"wrote {st_path}")
        if onnx_path:
            try:
                import onnx  # noqa: F401 - the exporter needs it
            except ImportError:
                raise click.ClickException(
                    "ONNX export needs the onnx package: pip install 'degradekit[onnx]'") from None
            res = export_onnx(weights, onnx_path, opset=opset, check=check)
            line = f"wrote {onnx_path} (x{res['scale']}, {res['num_block']} blocks)"
            if res["checked"]:
                line += f"; onnxruntime vs torch max |diff| {res['max_abs_diff']:.2e}"
                if res["max_abs_diff"] > 1e-3:
                    raise click.ClickException(
                        f"{onnx_path}: ONNX output differs from torch by {res['max_abs_diff']:.2e}")
            elif check:
                line += "; not checked (onnxruntime not installed)"
            click.echo(line)
    except (WeightError, ValueError) as e:
        raise click.ClickException(str(e)) from None
