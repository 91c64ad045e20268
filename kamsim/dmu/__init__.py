"""Each account's decision unit: who decides, how we cover them, and how that changes.

One networkx DiGraph per account is the form for building, checking, analysing and drawing
(:mod:`kamsim.dmu.graph`); the simulation works on flat arrays of all units at once
(:class:`Units`). See docs/dmu.md.
"""

from __future__ import annotations

from kamsim import _submodules_of
from kamsim.dmu.arrays import (
    ATTITUDE_VALUES,
    COVERAGE_VALUES,
    Units,
    attitude_label,
    concat_units,
    coverage_label,
    select_accounts,
)
from kamsim.dmu.build import append_units, build_units
from kamsim.dmu.crm import read_contacts_csv
from kamsim.dmu.dynamics import StepInput, StepOutcome, StepParams, step
from kamsim.dmu.graph import from_graphs, to_graph
from kamsim.dmu.metrics import FLAG_NAMES, Metrics, metrics

__all__ = [
    "Units", "build_units", "append_units", "to_graph", "from_graphs", "read_contacts_csv",
    "Metrics", "metrics", "FLAG_NAMES", "StepInput", "StepParams", "StepOutcome", "step",
    "ATTITUDE_VALUES", "COVERAGE_VALUES", "attitude_label", "coverage_label", "concat_units",
    "select_accounts",
]

# every other module of this package as an attribute after a bare `import kamsim`
# (kamsim.dmu.report.describe_unit), imported on first use
__getattr__ = _submodules_of(__name__)
