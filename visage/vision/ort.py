"""The one place that builds ONNX Runtime sessions, with thread counts set on purpose."""

from __future__ import annotations

import onnxruntime as ort


def make_session(model: bytes | str, *, intra_op_threads: int = 0) -> ort.InferenceSession:
    """A CPU inference session.

    ``intra_op_threads`` = 0 lets ONNX Runtime use every core; inter-op is 1 because our
    graphs are sequential and parallel branches would only contend with each other;
    threads sleep rather than spin between runs (see below).
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # Several sessions (detector, embedder) run one after another in the same process; a
    # pool that spin-waits after its run steals the cores from the next model's run.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Inputs vary in size (the detector sees every image size); the arena would keep the
    # largest buffers of every concurrent run for the life of the process.
    opts.enable_cpu_mem_arena = False
    providers = [p for p in ("CPUExecutionProvider",) if p in ort.get_available_providers()]
    return ort.InferenceSession(model, sess_options=opts, providers=providers)
