"""Where a fold's ONNX file lives and what it carries besides the graph: ``model.onnx`` beside the
fold's other outputs, ``hawkeye.*`` metadata (JSON values), and the ONNX Runtime session every
check and prediction opens. Apart from :mod:`hawkeye.export` so that the tree export
(:mod:`hawkeye.tree_export`, run by the training fit that export itself imports) writes the same
file without an import circle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from hawkeye import __version__

ONNX_NAME = "model.onnx"
META_PREFIX = "hawkeye."


def write_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Store ``meta`` in the ONNX file's ``metadata_props`` as ``hawkeye.<key>`` = JSON value."""
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if not p.key.startswith(META_PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = META_PREFIX + key, json.dumps(value)
    model.producer_name, model.producer_version = "hawkeye", __version__
    onnx.save(model, str(path))


def ort_session(path: str | Path, threads: int) -> ort.InferenceSession:
    """A CPU ONNX Runtime session with ``threads`` intra-op threads (0 = runtime default)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the runtime's warnings are not actionable here
    return ort.InferenceSession(str(path), sess_options=options,
                                providers=["CPUExecutionProvider"])
