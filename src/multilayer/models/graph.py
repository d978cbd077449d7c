"""The directed acyclic graph of a model: which layer runs on which tensors, in which order.

`Graph` is found by walking back from the output tensors through the nodes that layer calls
recorded (`multilayer.engine.layers.symbolic`), then sorted topologically. Forward runs the
layers in that order; backward runs them in reverse, hands each layer the gradient of its
output (summed over every layer that consumed it) and skips what no parameter depends on.
There is no autodiff: every layer keeps its own explicit backward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np

from multilayer.engine.layers.core import InputLayer
from multilayer.engine.layers.symbolic import KerasTensor, Node

if TYPE_CHECKING:
    from multilayer.engine.layers.base import Layer


class _Step:
    """One layer call of the plan: tensor indices in and out."""

    __slots__ = ("layer", "inputs", "outputs", "multi")

    def __init__(self, layer: Layer, inputs: list[int], outputs: list[int]):
        self.layer = layer
        self.inputs = inputs
        self.outputs = outputs
        self.multi = layer.multi_input


class Graph:
    """The layers between ``inputs`` and ``outputs`` (symbolic tensors), in running order.

    Raises:
        ValueError: an input that is not from ``Input(...)``, an output that depends on a
            tensor that is not one of the inputs ("graph disconnected"), an input no output
            depends on, a cycle, or two layers with one name.
    """

    def __init__(self, inputs: list[KerasTensor], outputs: list[KerasTensor], owner: str):
        for tensor in [*inputs, *outputs]:
            if not isinstance(tensor, KerasTensor):
                raise TypeError(
                    f"model {owner!r}: inputs and outputs must be symbolic tensors (from "
                    f"keras.Input and layer calls), got a {type(tensor).__name__}"
                )
        for tensor in inputs:
            if not isinstance(tensor.layer, InputLayer):
                raise ValueError(
                    f"model {owner!r}: input {tensor.name!r} (shape {tensor.shape}) is the output "
                    f"of layer {tensor.layer.name!r} ({type(tensor.layer).__name__}), not of "
                    "keras.Input(...)"
                )
        if len({id(t) for t in inputs}) != len(inputs):
            raise ValueError(f"model {owner!r}: the same input tensor is given twice")
        self.inputs, self.outputs = list(inputs), list(outputs)
        order = self._sort(owner)
        index: dict[int, int] = {}
        for tensor in inputs:
            index[id(tensor)] = len(index)
        self.steps: list[_Step] = []
        self.layers: list[Layer] = [t.layer for t in inputs]
        for node in order:
            if isinstance(node.layer, InputLayer):
                continue
            for tensor in node.outputs:
                index[id(tensor)] = len(index)
            self.steps.append(
                _Step(
                    node.layer,
                    [index[id(t)] for t in node.inputs],
                    [index[id(t)] for t in node.outputs],
                )
            )
            self.layers.append(node.layer)
        names = [layer.name for layer in self.layers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(
                f"model {owner!r}: layer names must be unique, found {duplicates} more than once"
            )
        self.size = len(index)
        self.input_shapes = [t.sample_shape for t in inputs]
        self.output_shapes = [t.sample_shape for t in outputs]
        self.input_index = [index[id(t)] for t in inputs]
        self.output_index = [index[id(t)] for t in outputs]
        used = {i for step in self.steps for i in step.inputs} | set(self.output_index)
        for tensor, i in zip(inputs, self.input_index, strict=True):
            if i not in used:
                raise ValueError(
                    f"model {owner!r}: input {tensor.name!r} (shape {tensor.shape}) is not "
                    "connected to any output; every input must be used"
                )
        self.producer = {o: step for step in self.steps for o in step.outputs}
        consumers = [0] * self.size
        for step in self.steps:
            for i in step.inputs:
                consumers[i] += 1
        for i in self.output_index:
            consumers[i] += 1
        self.consumers = consumers
        # Model inputs that may hold raw table values (text, missing values): those read only
        # by layers that take them (Layer.accepts_raw_input), and not an output themselves.
        self.raw_inputs = [
            i not in self.output_index
            and all(step.layer.accepts_raw_input for step in self.steps if i in step.inputs)
            for i in self.input_index
        ]
        self._plans = {mode: self._backward_plan(mode) for mode in (False, True)}
        # A plain chain (a Sequential model, or a functional one without branches) runs
        # through a simpler loop: the same calls, without the tensor bookkeeping.
        self.chain = self._as_chain()

    def _as_chain(self) -> list[Layer] | None:
        previous = self.input_index
        if len(previous) != 1 or len(self.output_index) != 1:
            return None
        for step in self.steps:
            if step.multi or step.inputs != previous or len(step.outputs) != 1:
                return None
            if self.consumers[step.inputs[0]] != 1:
                return None
            previous = step.outputs
        if previous != self.output_index:
            return None
        return [step.layer for step in self.steps]

    def _sort(self, owner: str) -> list[Node]:
        """Nodes feeding the outputs, each after the nodes it depends on (iterative DFS)."""
        allowed = {id(t) for t in self.inputs}
        done: set[int] = set()
        visiting: set[int] = set()
        order: list[Node] = []
        for output in self.outputs:
            stack: list[tuple[Node | None, bool, Layer | None]] = [
                (output.layer.inbound_node, False, None)
            ]
            while stack:
                node, expanded, consumer = stack.pop()
                if node is None:
                    raise ValueError(f"model {owner!r}: a tensor was not produced by a layer call")
                key = id(node)
                if expanded:
                    visiting.discard(key)
                    if key not in done:
                        done.add(key)
                        order.append(node)
                    continue
                if key in done:
                    continue
                if key in visiting:
                    raise ValueError(
                        f"model {owner!r}: the graph has a cycle through layer {node.layer.name!r}"
                    )
                if isinstance(node.layer, InputLayer) and id(node.outputs[0]) not in allowed:
                    where = f"layer {consumer.name!r}" if consumer is not None else "an output"
                    raise ValueError(
                        f"Graph disconnected: {where} of model {owner!r} depends on input "
                        f"{node.layer.name!r} (shape {node.outputs[0].shape}), which is not one of "
                        f"the model's inputs {[t.name for t in self.inputs]}"
                    )
                visiting.add(key)
                stack.append((node, True, consumer))
                for tensor in reversed(node.inputs):
                    stack.append((tensor.layer.inbound_node, False, node.layer))
        return order

    def _backward_plan(self, input_grads: bool) -> list[tuple[_Step, bool, list[bool]]]:
        """Steps that backward must run, last first, with whether each needs its input
        gradients: a tensor needs a gradient when a parameter (or, with ``input_grads``, a
        model input) lies upstream of it."""
        requires = [False] * self.size
        for i in self.input_index:
            requires[i] = input_grads
        plan = []
        for step in self.steps:
            per_input = [requires[i] for i in step.inputs]
            if step.layer.has_parameters() or any(per_input):
                for o in step.outputs:
                    requires[o] = True
                plan.append((step, any(per_input), per_input))
        return plan[::-1]

    # -- running --------------------------------------------------------------------------
    def forward(self, inputs: list[np.ndarray], training: bool) -> list[np.ndarray]:
        if self.chain is not None:
            x = inputs[0]
            for layer in self.chain:
                x = layer.forward(x, training=training)
            return [x]
        values: list = [None] * self.size
        for i, x in zip(self.input_index, inputs, strict=True):
            values[i] = x
        for step in self.steps:
            if step.multi:
                batch: list = [values[i] for i in step.inputs]
                out = step.layer.forward(batch, training=training)  # type: ignore[arg-type]
            else:
                out = step.layer.forward(values[step.inputs[0]], training=training)
            if len(step.outputs) == 1:
                values[step.outputs[0]] = out
            else:
                for i, value in zip(step.outputs, out, strict=True):
                    values[i] = value
        return [values[i] for i in self.output_index]

    def fusable(self, k: int) -> str | None:
        """The activation the loss of output ``k`` may absorb: that of the layer producing it,
        if nothing else in the graph consumes that output."""
        i = self.output_index[k]
        step = self.producer.get(i)
        if step is None or self.consumers[i] != 1 or len(step.outputs) != 1:
            return None
        return step.layer.fusable_activation

    def backward(
        self, output_grads: list, fused: list[bool], input_grads: bool
    ) -> list[np.ndarray | None] | None:
        """Fill every layer's parameter gradients from the outputs' gradients (``fused[k]``:
        output ``k``'s gradient is already taken before its activation). Returns the inputs'
        gradients when ``input_grads``."""
        if self.chain is not None:
            grad = output_grads[0]
            last = self.chain[-1] if self.chain else None
            for step, need, _ in self._plans[input_grads]:
                layer = step.layer
                if layer is last and fused[0]:
                    grad = layer.backward(grad, need, fused=True)
                else:
                    grad = layer.backward(grad, need)
            return [grad] if input_grads else None
        grads: list = [None] * self.size
        fused_steps = set()
        for k, (i, grad) in enumerate(zip(self.output_index, output_grads, strict=True)):
            if grad is not None:
                _accumulate(grads, i, grad)
            if fused[k]:
                fused_steps.add(id(self.producer[i]))
        for step, need, per_input in self._plans[input_grads]:
            layer = step.layer
            if len(step.outputs) == 1:
                grad = grads[step.outputs[0]]
            else:
                grad = [grads[o] for o in step.outputs]
                if all(g is None for g in grad):
                    grad = None
            if grad is None:  # nothing downstream reached a loss
                layer.zero_grads()
                continue
            if id(step) in fused_steps:
                result = layer.backward(grad, need, fused=True)
            else:
                result = layer.backward(grad, need)
            if not need:
                continue
            if step.multi:  # a multi-input layer returns one gradient per input
                input_grads_of_step = cast("list[np.ndarray]", result)
                for i, g, wanted in zip(step.inputs, input_grads_of_step, per_input, strict=True):
                    if wanted:
                        _accumulate(grads, i, g)
            else:
                assert result is not None  # need_input_grad was True
                _accumulate(grads, step.inputs[0], result)
        if not input_grads:
            return None
        return [grads[i] for i in self.input_index]


def _accumulate(grads: list, i: int, grad: np.ndarray) -> None:
    """Sum the gradients a tensor receives from each of its consumers. The first one is kept
    as is; later ones are added into it (a consumer's buffer, never read again this step)."""
    if grads[i] is None:
        grads[i] = grad
    else:
        np.add(grads[i], grad, out=grads[i], casting="unsafe")
