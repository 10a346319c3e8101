"""edgecnn.tflite_metadata: cards embedded, replaced and read back through the generated schemas, with no
TensorFlow (a device re-embedding a card), on the real Coral model."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import CORAL_MODEL

from edgecnn.card import ModelCard, Normalization
from edgecnn.labels import label_lines
from edgecnn.runtime import Classifier
from edgecnn.tflite_metadata.read import custom_ops, read_metadata, read_standard_metadata
from edgecnn.tflite_metadata.write import add_entries


def _coral_card(coral_dir) -> ModelCard:
    labels = label_lines((coral_dir / "imagenet_labels.txt").read_text())
    return ModelCard(labels=labels, input_height=224, input_width=224, output_kind="softmax",
                     normalization=Normalization([127.5] * 3, [127.5] * 3), format="tflite-int8",
                     architecture="mobilenet_v2")


def test_a_card_is_embedded_and_read_back_without_tensorflow(coral_dir, tmp_path):
    """What a device does: embed a card into a TFLite model with TensorFlow and Keras not importable."""
    out = tmp_path / "carded.tflite"
    code = textwrap.dedent(f"""
        import json, sys
        for name in ("tensorflow", "keras"):
            sys.modules[name] = None  # as if not installed
        from pathlib import Path
        from edgecnn.export.embed import embed_in_tflite
        from edgecnn.card import ModelCard
        card = ModelCard.from_json(Path({str(tmp_path / "card.json")!r}).read_text())
        data = Path({str(coral_dir / CORAL_MODEL)!r}).read_bytes()
        Path({str(out)!r}).write_bytes(embed_in_tflite(data, card))
        print(json.dumps({{"tf": "tensorflow.lite" in sys.modules}}))
    """)
    card = _coral_card(coral_dir)
    (tmp_path / "card.json").write_text(card.to_json())
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"tf": False}

    assert ModelCard.from_json(read_metadata(out, "edgecnn.card").decode()) == card
    assert read_metadata(out, "min_runtime_version").rstrip(b"\0") == b"1.5.0"  # the model's own entry kept
    standard = read_standard_metadata(out)  # replaced by edgecnn's, labels zipped on again
    assert standard.name == "mobilenet_v2 image classifier" and standard.labels == tuple(card.labels)
    assert custom_ops(out) == []
    clf = Classifier(out)
    assert clf.card == card and clf.predict(coral_dir / "cat.bmp").label == "Egyptian cat"


def test_entries_are_replaced_not_duplicated_and_the_model_still_runs(coral_dir, tmp_path):
    data = (coral_dir / CORAL_MODEL).read_bytes()
    once = add_entries(data, {"edgecnn.note": b"first"})
    labels = (coral_dir / "imagenet_labels.txt").read_bytes()
    twice = add_entries(once, {"edgecnn.note": b"second"}, {"imagenet_labels.txt": labels})
    path = tmp_path / "noted.tflite"
    path.write_bytes(twice)
    assert read_metadata(path, "edgecnn.note") == b"second"
    import ai_edge_litert.schema_py_generated as schema

    names = [m.name for m in schema.ModelT.InitFromPackedBuf(bytearray(twice), 0).metadata]
    assert names.count(b"edgecnn.note") == 1 and b"TFLITE_METADATA" in names
    # The rewrites keep the Coral model's own standard metadata; its label file is the one zipped on again.
    standard = read_standard_metadata(path)
    assert standard.labels_file == "imagenet_labels.txt" and standard.labels[:2] == ("background", "tench, Tinca tinca")
    original, rewritten = Classifier(coral_dir / CORAL_MODEL), Classifier(path)
    image = coral_dir / "cat.bmp"
    assert (rewritten.predict(image, top_k=5).top == original.predict(image, top_k=5).top)


def test_without_a_model_schema_reading_degrades_and_writing_says_what_to_install(coral_dir, tmp_path):
    """A device with neither ai-edge-litert nor TensorFlow (tflite_runtime only): no card, never a crash."""
    code = textwrap.dedent(f"""
        import json, sys
        for name in ("ai_edge_litert", "tensorflow"):
            sys.modules[name] = None
        from edgecnn.errors import BackendUnavailableError
        from edgecnn.tflite_metadata.read import buffers_in_bounds, custom_ops, read_metadata
        from edgecnn.tflite_metadata.write import add_entries
        model = {str(coral_dir / CORAL_MODEL)!r}
        try:
            add_entries(open(model, "rb").read(), {{"edgecnn.note": b"x"}})
            error = None
        except BackendUnavailableError as exc:
            error = str(exc)
        print(json.dumps([read_metadata(model, "min_runtime_version"), buffers_in_bounds(model), custom_ops(model),
                          error]))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        None, True, [], "cannot write TFLite metadata: no TFLite model schema (ai_edge_litert or tensorflow); "
                        "pip install ai-edge-litert"]
