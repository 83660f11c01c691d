"""What the scripts that edit exported graphs share (t2i_share_latents.py, caption_carry_context.py): a graph's nodes
in an order that runs, and a one-thread CPU session of a graph held in memory. Callers run `needs.require()` first."""
from __future__ import annotations

import onnx
import onnxruntime as ort


def topological(nodes: list[onnx.NodeProto], graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """`nodes` ordered so that each comes after what it reads (the graph's inputs and initializers are there first)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {''}
    ordered, pending = [], list(nodes)
    while pending:
        rest = []
        for n in pending:
            if all(x in ready for x in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise SystemExit(f'The rewritten graph has a cycle or a missing input at {rest[0].name}')
        pending = rest
    return ordered


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    """One intra-op and one inter-op thread on the CPU, warnings only."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=['CPUExecutionProvider'])
