import pytest

from edgecnn.errors import UsageError
from edgecnn.formats import FORMATS, backend_for_path, format_for_path, parse_formats


def test_every_format_has_a_backend_suffix_and_tolerance():
    for fmt in FORMATS.values():
        assert fmt.backend in {"litert", "onnx", "keras"}
        if fmt.name != "saved_model":
            assert backend_for_path(fmt.filename) == fmt.backend
        assert format_for_path(f"/x/{fmt.filename}") is fmt
        tol = fmt.tolerance
        assert (tol.max_abs_diff is not None) != (tol.max_accuracy_drop is not None)  # exact or judged on accuracy


def test_parse_formats():
    assert [f.name for f in parse_formats("all")] == list(FORMATS)
    assert [f.name for f in parse_formats("onnx, tflite-int8")] == ["tflite-int8", "onnx"]
    with pytest.raises(UsageError, match="did you mean 'tflite-fp32'"):
        parse_formats("tflite-fp23")
    with pytest.raises(UsageError, match="no formats"):
        parse_formats(" , ")


def test_unknown_suffix_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot tell the format"):
        backend_for_path(tmp_path / "model.pt")
