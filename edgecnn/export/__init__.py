"""Export a Keras image classifier to every format in :data:`edgecnn.formats.FORMATS`.

Each artifact is written atomically with its card embedded (where the format
allows) and beside it as ``<artifact>.card.json``, then validated against the
Keras model on real images. Heavy libraries are imported only by the exporters.
The output folder is claimed for the export (:func:`~edgecnn.rundir.claim_folder`);
while it is written, a note in it (:data:`~edgecnn.export.out_folder.UNFINISHED_FILE`) lists the files the
export may leave half-done, so that a re-run after an interrupted export (Ctrl-C,
a kill) replaces them without ``--force``.

An export is planned (:mod:`edgecnn.export.plan`: nothing written under ``out``),
then written (:mod:`edgecnn.export.writer`); :mod:`edgecnn.export.out_folder`
holds the folder's claim, checks and unfinished note.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgecnn.export.out_folder import claimed
from edgecnn.export.plan import ExportOptions, plan_export
from edgecnn.export.report import ExportReport
from edgecnn.export.stats import MAX_VALIDATION_IMAGES
from edgecnn.export.writer import write_export
from edgecnn.formats import parse_formats

__all__ = ["ExportReport", "export"]


def export(
    model,
    formats: str | list[str] = "all",
    out: str | os.PathLike = "export",
    *,
    labels: str | os.PathLike | list[str] | None = None,
    calib_data: str | os.PathLike | None = None,
    calib_samples: int = 200,
    int8_io: str = "uint8",
    int8_rounding: str = "optimal",
    int8_float_layers: str | None = None,
    output_kind: str | None = None,
    opset: int = 17,
    force: bool = False,
    validate: bool = True,
    val_samples: int = MAX_VALIDATION_IMAGES,
    allow_tf_ops: bool = False,
    seed: int = 0,
) -> ExportReport:
    """Export ``model`` (run dir, .keras file or keras.Model) to ``formats`` in ``out``.

    Returns the :class:`ExportReport` (also saved as ``out/export_report.json``); progress and
    warnings go to the ``edgecnn.export`` logger.
    Raises :class:`ValidationError` after writing everything when an artifact
    misses its format's tolerance on at least 300 images; any other bad input
    raises before ``out`` is touched.
    """
    fmts = parse_formats(formats)
    options = ExportOptions(labels=labels, calib_data=calib_data, calib_samples=calib_samples, int8_io=int8_io,
                            int8_rounding=int8_rounding, int8_float_layers=int8_float_layers,
                            output_kind=output_kind, opset=opset, force=force, validate=validate,
                            val_samples=val_samples, allow_tf_ops=allow_tf_ops, seed=seed)
    options.check()
    out = Path(out)
    with claimed(out):
        return write_export(plan_export(model, fmts, out, options), out)
