"""`trainer export WEIGHTS [--pth F.pth] [--safetensors F.safetensors] [--layout basicsr|esrgan] [--onnx F.onnx]`."""
from __future__ import annotations

import click


@click.command("export")
@click.argument("weights", type=click.Path(dir_okay=False, exists=True))
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), default=None, help="Write an ONNX model.")
@click.option("--safetensors", "st_path", type=click.Path(dir_okay=False), default=None,
              help="Write the (EMA) generator as .safetensors (architecture in the header metadata).")
@click.option("--pth", "pth_path", type=click.Path(dir_okay=False), default=None,
              help="Write the (EMA) generator as a .pth weight file.")
@click.option("--layout", type=click.Choice(["basicsr", "esrgan"]), default="basicsr", show_default=True,
              help="Key names of --pth/--safetensors: basicsr (Real-ESRGAN/BasicSR: conv_first, body.N.rdbM...; "
                   ".pth as {params, params_ema}) or esrgan (ESRGAN's model.N layout, a bare dict, as spandrel and "
                   "chaiNNer save).")
@click.option("--opset", type=click.IntRange(min=11), default=17, show_default=True, help="ONNX opset.")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Compare the ONNX model with torch using onnxruntime (when installed).")
def export(weights, onnx_path, st_path, pth_path, layout, opset, check):
    """Export a generator weight file (the EMA weights of a checkpoint; any layout trainer reads) to ONNX,
    safetensors and/or .pth in either key layout."""
    from trainer.checkpoint import WeightError
    from trainer.export import export_onnx, export_weights

    if not onnx_path and not st_path and not pth_path:
        raise click.UsageError("give --onnx FILE, --safetensors FILE and/or --pth FILE")
    if st_path and not st_path.endswith(".safetensors"):
        raise click.BadParameter(f"{st_path}: expected a .safetensors file name", param_hint="--safetensors")
    if pth_path and not pth_path.endswith((".pth", ".pt")):
        raise click.BadParameter(f"{pth_path}: expected a .pth file name", param_hint="--pth")
    try:
        for path in (st_path, pth_path):
            if path:
                res = export_weights(weights, path, layout=layout)
                nb = res["num_block"]
                click.echo(f"wrote {path} ({layout} layout, x{res['scale']}, {nb} block{'s' * (nb != 1)})")
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
    except (WeightError, ValueError, OSError) as e:
        msg = str(e) if isinstance(e, ValueError) else f"{getattr(e, 'filename', '') or weights}: {e.strerror or e}"
        raise click.ClickException(msg.splitlines()[0]) from None
