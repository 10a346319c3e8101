"""ExportJob: what every exporter receives (the source model, options, calibration images)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.card import ModelCard
from edgecnn.data.imageset import ImageSet
from edgecnn.export.model_to_export import ModelToExport
from edgecnn.formats import Format

INT8_IO = ("uint8", "int8", "float32")
INT8_ROUNDING = ("optimal", "nearest")


@dataclass
class ExportJob:
    source: ModelToExport
    workdir: Path  # scratch folder for intermediates, removed after export
    int8_io: str = "uint8"
    opset: int = 17
    allow_tf_ops: bool = False
    calibration: ImageSet | None = None  # set when an int8 format is requested
    int8_rounding: str = "optimal"  # int8 weights: optimal rounding (GPTQ) onto the grid, or nearest
    int8_float_layers: str | None = None  # tflite-int8: "auto", a count, or comma-separated layer names
    written: dict[str, Path] = field(default_factory=dict)  # format name -> artifact already written
    details: dict[str, dict] = field(default_factory=dict)  # format name -> what the exporter reports
    reference_features: Any = None  # the Keras model's features of the validation images (numpy), when it has them

    @property
    def model(self):
        return self.source.model

    def card_for(self, fmt: Format, **extra: Any) -> ModelCard:
        """The source card restated for ``fmt``'s artifact."""
        card = self.source.card
        return card.replace(format=fmt.name, quantization=fmt.quantization, extra={**card.extra, **extra})

    def calibration_note(self) -> dict:
        """What the card records about calibration (synthetic images are flagged)."""
        assert self.calibration is not None
        note = self.calibration.describe()
        if self.calibration.synthetic:
            note["warning"] = "calibrated on synthetic images: no real images were found"
        return {"calibration": note}
