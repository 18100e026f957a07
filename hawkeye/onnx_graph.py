"""The exported graph of a scoring module: captured once per architecture, filled per fold.

:func:`export_graph` runs the dynamo exporter (``torch.onnx.export(dynamo=True)``, dynamic batch and
time axes) without optimising, so the graph's initializers are exactly the module's parameters and
buffers; :func:`with_weights` fills such a graph with any fold's weights of the same architecture
and optimises it as the exporter would. Capture and decompositions are the seconds of an export,
filling is a fraction of one: ``export.reuse_graph`` keeps the first fold's unoptimised graph in the
run's model folder (:func:`graph_file`, :func:`kept_graph`) and later folds fill it. Every file is
still checked against PyTorch before it is published (:func:`hawkeye.export.export_verified`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import onnxscript
import torch
from omegaconf import DictConfig
from onnxscript import ir, optimizer
from torch import nn

from hawkeye import __version__

log = logging.getLogger("hawkeye.export")

INPUT_NAMES = ("x", "mask")
# a reusable graph in a run's model folder (export_verified): .graph-<hash>.onnx
GRAPH_PREFIX = ".graph-"


def export_onnx(module: nn.Module, n_features: int, path: Path, opset: int, max_batch: int,
                max_frames: int) -> None:
    """Export ``module`` to ``path`` with dynamic batch and time axes (dynamo exporter)."""
    save_graph(with_weights(export_graph(module, n_features, opset, max_batch, max_frames),
                            module), path)


def export_graph(module: nn.Module, n_features: int, opset: int, max_batch: int,
                 max_frames: int) -> ir.Model:
    """The dynamo exporter's graph of ``module``, dynamic batch and time axes, not yet optimised.

    Unoptimised, its initializers are exactly the module's parameters and buffers under their
    names (optimising folds some of them into derived constants), so the graph serves any weights
    of the same architecture (:func:`with_weights`): the expensive part of an export (capture and
    decompositions, seconds) is done once per architecture, not once per fold.
    """
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    frames = torch.export.Dim("time", min=1, max=max_frames)
    # Example input: a length that no real dimension shares, so nothing gets specialised to it.
    x = torch.randn(2, 37, n_features) * module.std + module.mean
    mask = torch.ones(2, 37, dtype=torch.bool)
    mask[1, 20:] = False
    with _quiet_exporter(), _dynamic_rnn_decompositions():
        program = torch.onnx.export(
            module, (x, mask), dynamo=True, input_names=list(INPUT_NAMES),
            output_names=list(module.output_names), opset_version=opset,
            dynamic_shapes={"x": {0: batch, 1: frames}, "mask": {0: batch, 1: frames}},
            optimize=False, verbose=False)
    return program.model


def with_weights(graph: ir.Model, module: nn.Module) -> ir.Model:
    """``graph`` (from :func:`export_graph`, changed in place) holding ``module``'s current
    weights, then optimised as the exporter optimises (constant folding, redundancy removal).

    Every initializer named after a parameter or buffer of ``module`` takes its value; the others
    are constants of the architecture (a buffer the graph never reads has no initializer). Raises
    :class:`ValueError` when a weight's shape or type differs from the graph's (a graph of another
    architecture).
    """
    state = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    for name, value in graph.graph.initializers.items():
        if name not in state:
            continue
        weights = state[name].detach().cpu().numpy()
        kept = value.const_value
        wanted = (weights.shape, ir.DataType.from_numpy(weights.dtype))
        if kept is None or (tuple(kept.shape), kept.dtype) != wanted:
            raise ValueError(f"the graph's weight {name!r} is not the module's (shape, type "
                              f"{None if kept is None else (tuple(kept.shape), kept.dtype)} "
                              f"against {wanted}): a graph of another architecture")
        value.const_value = ir.tensor(weights, name=name)
    optimizer.optimize_ir(graph)
    return graph


def save_graph(graph: ir.Model, path: Path) -> None:
    """Write ``graph`` to ``path`` as one self-contained file (weights inside)."""
    ir.save(graph, str(path))


def graph_file(module: nn.Module, n_features: int, export_cfg: DictConfig) -> str:
    """The name a fold's reusable graph is kept under: a hash of everything that shapes the graph
    (the module's architecture and weight shapes, the head's settings, input width, export
    settings, package versions). The parity check still guards every reuse."""
    identity = {
        "module": repr(module),
        "weights": [(name, list(t.shape), str(t.dtype)) for name, t in module.state_dict().items()],
        "head": [type(module.head).__name__, sorted(vars(module.head).items())]
        if module.head is not None else None,
        "outputs": list(module.output_names), "n_features": n_features,
        "export": [int(export_cfg.opset), int(export_cfg.max_batch), int(export_cfg.max_frames)],
        "versions": [torch.__version__, onnxscript.__version__, __version__],
    }
    digest = hashlib.sha256(json.dumps(identity, default=str).encode()).hexdigest()[:16]
    return f"{GRAPH_PREFIX}{digest}.onnx"


def kept_graph(kept: Path | None, module: nn.Module) -> ir.Model | None:
    """The graph kept at ``kept`` holding ``module``'s weights; None when there is none or it does
    not fit (damaged, another architecture): then the fold is exported afresh."""
    if kept is None or not kept.exists():
        return None
    try:
        return with_weights(ir.load(str(kept)), module)
    except Exception as error:  # a damaged file raises what the protobuf/IR readers raise
        log.warning("%s: not reusable (%s: %s); exporting afresh", kept, type(error).__name__,
                    str(error)[:200])
        return None


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's warnings and progress lines (torchvision absent, deprecations)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                              "torch._export", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(sys.stderr if log.isEnabledFor(logging.DEBUG)
                                            else _NullWriter()):
                yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _dynamic_rnn_decompositions() -> Iterator[None]:
    """Keep ``aten.lstm``/``aten.gru`` on their while-loop decompositions for the whole export.

    ``torch.onnx.export`` registers these length-agnostic decompositions only around graph capture;
    the later decomposition step and the operator's dispatch cache (``OpOverload._dispatch_cache``,
    filled by the first export in a process) can bring back the Python-loop decomposition, which
    freezes the time axis to the example length: in torch 2.13 the *second* LSTM export in one
    process came out with ``time`` fixed to 37 (cf. pytorch/pytorch#193192). Registering them for
    the whole call and clearing the caches around it makes every export in a process the same.
    """
    ops = [torch.ops.aten.lstm.input, torch.ops.aten.gru.input]
    try:
        from torch.export._patches import (
            register_gru_while_loop_decomposition,
            register_lstm_while_loop_decomposition,
        )
    except ImportError:  # older torch: the exporter's own handling is all there is
        patches: list[contextlib.AbstractContextManager] = []
    else:
        patches = [register_lstm_while_loop_decomposition(),
                   register_gru_while_loop_decomposition()]

    def clear_caches() -> None:
        for op in ops:
            getattr(op, "_dispatch_cache", {}).clear()

    clear_caches()
    try:
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            yield
    finally:
        clear_caches()


class _NullWriter:
    """A stdout sink for the exporter's progress prints."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
