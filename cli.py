"""Entry points of the two commands: `degradekit` (data synthesis) and `trainer` (training/inference).

Each subcommand lives in its own module (degradekit/commands/*, trainer/commands/*) and is registered here.
Heavy imports (torch) happen inside the subcommands, so `--help` stays fast.
"""
import click

from degradekit.commands import config as _config_cmd
from degradekit.commands import preview as _preview_cmd
from degradekit.commands import synth as _synth_cmd
from degradekit.commands import data as _data_cmd
from degradekit.commands import inspect as _inspect_cmd
from degradekit.commands import replay as _replay_cmd
from degradekit.commands import manifest as _manifest_cmd
from degradekit.commands import pool as _pool_cmd
from degradekit.commands import export as _export_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="degradekit")
def degradekit():
    """Render LR/HR training pairs with the Real-ESRGAN degradation model or RealSR kernel/noise pools."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="degradekit")
def trainer():
    """Train Real-ESRNet / Real-ESRGAN on degradekit shards, and run tiled inference."""


# --- degradekit subcommands (one line per module) ---
degradekit.add_command(_config_cmd.config)
degradekit.add_command(_preview_cmd.preview)
degradekit.add_command(_synth_cmd.synth)
degradekit.add_command(_data_cmd.data)
degradekit.add_command(_inspect_cmd.inspect)
degradekit.add_command(_replay_cmd.replay)
degradekit.add_command(_manifest_cmd.manifest)
degradekit.add_command(_pool_cmd.pool)
degradekit.add_command(_export_cmd.export)

# --- trainer subcommands (one line per module) ---
from trainer.commands import export as _t_export, fit as _t_fit, infer as _t_infer, interp as _t_interp  # noqa: E402
trainer.add_command(_t_fit.fit)
trainer.add_command(_t_infer.infer)
trainer.add_command(_t_interp.interp)
trainer.add_command(_t_export.export)


if __name__ == "__main__":  # pragma: no cover
    degradekit()
