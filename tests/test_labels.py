import pytest

from edgecnn.errors import LabelsError
from edgecnn.labels import align_labels, read_labels, write_labels


def test_write_read_round_trip(tmp_path):
    write_labels(tmp_path / "labels.txt", ["daisy", "rose tulip"])
    assert read_labels(tmp_path / "labels.txt") == ["daisy", "rose tulip"]


def test_index_prefixes_are_stripped(tmp_path):
    (tmp_path / "l.txt").write_text("0 cat\n1: dog\n2 2 fast 2 furious\n\n")
    assert read_labels(tmp_path / "l.txt") == ["cat", "dog", "2 fast 2 furious"]


def test_background_line_is_aligned():
    assert align_labels(["background", "cat", "dog"], 2) == ["cat", "dog"]
    assert align_labels(["no", "yes"], 1) == ["no", "yes"]  # single sigmoid unit


def test_mismatch_is_an_error(tmp_path):
    with pytest.raises(LabelsError, match="3 labels but the model has 5 outputs"):
        align_labels(["a", "b", "c"], 5)
    with pytest.raises(LabelsError, match="not found"):
        read_labels(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(LabelsError, match="empty"):
        read_labels(tmp_path / "empty.txt")
