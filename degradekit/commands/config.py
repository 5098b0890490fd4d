"""`degradekit config`: show the effective config of a preset or file, check a config file."""
from __future__ import annotations

import click


@click.group("config", context_settings={"help_option_names": ["-h", "--help"]})
def config():
    """Show and check degradation configs (TOML)."""


@config.command("show")
@click.option("--preset", "preset_name", default="realesrgan", show_default=True,
              help="Preset to show (realesrgan, realesrgan-x2, realworld, realworld-x2; bsrgan, bsrgan-x2, "
                   "bsrgan-x3, bsrgan-plus, bsrgan-plus-x2).")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="A (partial) TOML config: show it merged over its preset instead.")
@click.option("--no-comments", is_flag=True, help="Leave out the comment line above each key.")
def show(preset_name: str, file: str | None, no_comments: bool):
    """Print the full effective config as TOML, to copy and edit."""
    from degradekit.bsrgan import bsrgan_preset, dump_bsrgan_config, is_bsrgan_toml, load_bsrgan_config
    from degradekit.config import ConfigError, dump_config, load_config, preset

    # the BSRGAN pipeline has its own config (pipeline = "bsrgan" in the file, or a bsrgan* preset)
    if is_bsrgan_toml(file) if file else preset_name.startswith("bsrgan"):
        try:
            cfg = load_bsrgan_config(file) if file else bsrgan_preset(preset_name)
        except ValueError as e:
            raise click.ClickException(str(e) if file else f"--preset {preset_name}: {e}") from None
        click.echo(dump_bsrgan_config(cfg, comments=not no_comments), nl=False)
        return
    try:
        cfg = load_config(file) if file else preset(preset_name)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    click.echo(dump_config(cfg, comments=not no_comments), nl=False)


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--patch", type=click.IntRange(21, 100_000), default=400, show_default=True,
              help="HR size (as synth --patch) for the bound on intermediate image sizes.")
def check(file: str, patch: int):
    """Validate FILE: print OK, or the one-line error and exit with status 1.

    Besides every key, checks that the codecs it uses are installed and that no intermediate image can exceed
    the size bound (degradekit.config.MAX_INTERMEDIATE_PIXELS) at an HR of PATCH x PATCH px.
    """
    from degradekit.bsrgan import is_bsrgan_toml, load_bsrgan_config
    from degradekit.config import ConfigError, check_size_bound, load_config

    if is_bsrgan_toml(file):  # BSRGAN never enlarges past the HR: its own strict loader is the whole check
        try:
            load_bsrgan_config(file)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"{file}: OK")
        return
    try:
        cfg = load_config(file)
        check_size_bound(cfg, (patch, patch), file)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{file}: OK")
