"""`trainer infer WEIGHTS INPUT... --out DIR`: upscale images with a generator weight file."""
from __future__ import annotations

import click

_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def _kind(mode: int) -> str:
    import stat
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


@click.command("infer")
@click.argument("weights", type=click.Path(dir_okay=False, exists=True))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--tile", type=click.IntRange(min=0), default=0, show_default=True,
              help="Tile size in input pixels (0 = whole image at once); must exceed --tile-overlap.")
@click.option("--tile-overlap", type=click.IntRange(min=0), default=32, show_default=True,
              help="Overlap of neighbouring tiles, blended with linear ramps.")
@click.option("--tile-pad", type=click.IntRange(min=0), default=10, show_default=True,
              help="Extra context around each tile (cut away after the net).")
@click.option("--pre-pad", type=click.IntRange(min=0), default=0, show_default=True,
              help="Reflect padding of the whole image (bottom/right), removed after the net; 0 as Real-ESRGAN's "
                   "inference_realesrgan.py (its RealESRGANer class defaults to 10).")
@click.option("--outscale", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Final size factor (Lanczos resize of the net's output); default: the net's scale.")
@click.option("--alpha", "alpha_mode", type=click.Choice(["bicubic", "net"]), default="bicubic", show_default=True,
              help="How an alpha channel is upscaled.")
@click.option("--half/--fp32", "half", default=None,
              help="Precision of the net: fp16 is the default on CUDA (as the published command), --fp32 turns it "
                   "off; CPU always runs fp32.")
@click.option("--device", default=None, help="cpu / cuda / cuda:N [default: cuda if available].")
@click.option("--suffix", default="_out", show_default=True, help="Appended to output file names.")
def infer(weights, inputs, out, tile, tile_overlap, tile_pad, pre_pad, outscale, alpha_mode, half, device, suffix):
    """Upscale INPUT images/folders with WEIGHTS (trainer or released Real-ESRGAN RRDBNet files, ESRGAN's model.N
    layout too; the architecture is read from the file). Gray, 16-bit and alpha images keep their format (PNG
    output). An unreadable image is reported in one line and the others are still written (exit 1 at the end);
    anything that is not a regular file (FIFO, device) is skipped with a warning. Out of GPU memory: the image is
    retried with smaller tiles (512, 256, ...)."""
    import os
    import stat
    import sys
    import time
    from pathlib import Path

    import cv2
    import torch

    from trainer.checkpoint import WeightError, load_generator
    from trainer.infer import InferError, read_image_any, upscale, write_image_any

    if 0 < tile <= tile_overlap:
        raise click.BadParameter(f"--tile {tile} must be larger than --tile-overlap {tile_overlap} "
                                 f"(e.g. --tile-overlap {tile // 4})", param_hint="--tile")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if half is None:
        half = dev.type == "cuda"
    elif half and dev.type != "cuda":
        click.echo("note: --half needs CUDA; running in fp32", err=True)
        half = False
    try:
        net, cfg = load_generator(weights)
    except WeightError as e:
        raise click.ClickException(str(e)) from None
    net = net.to(dev)
    if half:
        net = net.half()
    files, skipped = [], 0

    def regular(p: Path) -> bool:
        nonlocal skipped
        try:
            mode = os.stat(p).st_mode           # follows links: a link to /dev/zero is a device
        except OSError as e:
            click.echo(f"warning: {p}: cannot stat ({e.strerror}); skipped", err=True)
            skipped += 1
            return False
        if stat.S_ISREG(mode):
            return True
        click.echo(f"warning: {p}: {_kind(mode)}, not a regular file; skipped", err=True)
        skipped += 1
        return False

    for item in map(Path, inputs):
        if item.is_dir():
            files += [p for p in sorted(item.iterdir()) if p.suffix.lower() in _EXTS and not p.is_dir()
                      and regular(p)]
        elif regular(item):
            files.append(item)
    if not files:
        raise click.ClickException(f"{inputs[0]}: no images found")
    outdir = Path(out)
    failed = 0
    for i, f in enumerate(files, 1):
        t0 = time.time()
        try:
            img = read_image_any(f)
            t = tile
            while True:
                try:
                    res = upscale(net, img, scale=cfg["scale"], tile=t, tile_overlap=tile_overlap,
                                  tile_pad=tile_pad, pre_pad=pre_pad, outscale=outscale, alpha=alpha_mode,
                                  half=half, device=dev)
                    break
                except torch.OutOfMemoryError:
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                    nxt = 512 if t <= 0 else t // 2
                    if nxt < max(64, 2 * tile_overlap + 4):
                        raise
                    click.echo(f"note: {f}: out of memory with --tile {t}; retrying with --tile {nxt}", err=True)
                    t = nxt
            dst = outdir / f"{f.stem}{suffix}.png"
            write_image_any(dst, res)
        except InferError as e:
            failed += 1
            click.echo(f"error: {e}", err=True)
            continue
        except (RuntimeError, MemoryError, ValueError, OSError, cv2.error) as e:
            # includes OutOfMemoryError at the smallest tile and a full disk; the next image is still tried
            failed += 1
            msg = (str(e).splitlines() or [type(e).__name__])[0]
            hint = " (try a smaller --tile)" if "memory" in msg.lower() else ""
            click.echo(f"error: {f}: {msg}{hint}", err=True)
            continue
        click.echo(f"[{i}/{len(files)}] {f} -> {dst} ({img.shape[1]}x{img.shape[0]} -> "
                   f"{res.shape[1]}x{res.shape[0]}, {time.time() - t0:.2f} s)", err=not sys.stdout.isatty())
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} image(s) failed"
                                   + (f" ({skipped} skipped)" if skipped else ""))
