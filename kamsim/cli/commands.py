"""Registers the command groups that live in their own modules (each adds itself to
``kamsim.cli.main.cli`` when imported)."""

from kamsim.cli import (  # noqa: F401
    compare_cmd,
    dmu_cmd,
    report_cmd,
    runs_cmd,
    sweep_cmd,
    trainer_cmd,
)
