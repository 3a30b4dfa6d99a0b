"""The paper's repeated-sampling evaluation, recomputed from a run folder's stored predictions.

For each attack size k and draw, every person in the evaluated population gets k of their
photos, drawn without replacement; the majority vote per template, the score and the verdict
are recomputed from the per-photo predictions that ``idia audit`` stored, and so are the
calibrated tests of :mod:`idia.claims`. No model is touched.

Modules: ``_run`` (reading a run folder), ``_sampling`` (draws and the vectorised vote),
``_bins`` (training-frequency bins), ``_evaluate`` (the evaluation and its outputs). Rates,
intervals and ROC curves live in :mod:`idia.metrics`.
"""

from idia.claims import benjamini_hochberg
from idia.evaluation._bins import (
    BIN_MODES,
    PAPER_BIN_EDGES,
    BinError,
    BinMode,
    frequency_bins,
    paper_bin_labels,
)
from idia.evaluation._claims import CALIBRATION_LEVELS, calibration, level_check
from idia.evaluation._evaluate import (
    CONTINUOUS_SCORES,
    DEFAULT_DRAWS,
    DEFAULT_SIZES,
    LOW_FPRS,
    PAPER_PROTOCOL,
    POPULATIONS,
    PROTOCOLS,
    EvaluationSettings,
    evaluate,
    evaluate_run,
    parse_sizes,
    summary_size,
)
from idia.evaluation._run import EvaluationError, RunData, load_run
from idia.evaluation._sampling import (
    draw_means,
    draw_scores,
    sample_photo_indices,
    selection_mask,
    size_rng,
    vote_tables,
)
from idia.metrics import (
    CI_LEVEL,
    CI_METHODS,
    CiMethod,
    Roc,
    binomial_interval,
    clopper_pearson_interval,
    roc_curve,
    wilson_interval,
)

__all__ = [
    "BIN_MODES",
    "CALIBRATION_LEVELS",
    "CI_LEVEL",
    "CI_METHODS",
    "CONTINUOUS_SCORES",
    "DEFAULT_DRAWS",
    "DEFAULT_SIZES",
    "LOW_FPRS",
    "PAPER_PROTOCOL",
    "POPULATIONS",
    "PROTOCOLS",
    "PAPER_BIN_EDGES",
    "BinError",
    "BinMode",
    "CiMethod",
    "EvaluationError",
    "EvaluationSettings",
    "Roc",
    "RunData",
    "benjamini_hochberg",
    "binomial_interval",
    "calibration",
    "clopper_pearson_interval",
    "draw_means",
    "draw_scores",
    "evaluate",
    "evaluate_run",
    "frequency_bins",
    "level_check",
    "load_run",
    "paper_bin_labels",
    "parse_sizes",
    "roc_curve",
    "sample_photo_indices",
    "selection_mask",
    "size_rng",
    "summary_size",
    "vote_tables",
    "wilson_interval",
]
