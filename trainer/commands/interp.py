"""`trainer interp A B --alpha 0.8 --out C`: ESRGAN network interpolation."""
from __future__ import annotations

import click


@click.command("interp")
@click.argument("a", type=click.Path(dir_okay=False, exists=True))
@click.argument("b", type=click.Path(dir_okay=False, exists=True))
@click.option("--alpha", type=click.FloatRange(0, 1), required=True,
              help="Weight of B: (1 - alpha) A + alpha B (e.g. A = ESRNet, B = ESRGAN, alpha 0.8).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Output .pth or .safetensors.")
@click.option("--layout", type=click.Choice(["basicsr", "esrgan"]), default="basicsr", show_default=True,
              help="Key names of the output (esrgan: ESRGAN's model.N layout, a bare dict in a .pth).")
def interp(a, b, alpha, out, layout):
    """Interpolate two generator weight files key by key (params_ema, else params, else bare state_dict; BasicSR
    or ESRGAN key layout, mixed as needed)."""
    from trainer.checkpoint import WeightError
    from trainer.interp import interpolate_files

    try:
        res = interpolate_files(a, b, alpha, out, layout=layout)
    except (WeightError, ValueError) as e:
        raise click.ClickException(str(e).splitlines()[0]) from None
    click.echo(f"wrote {out} ({len(res)} tensors, alpha {alpha})")
