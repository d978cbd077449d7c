"""`Model`: a directed acyclic graph of layers, Keras' functional API.

    inputs = keras.Input(shape=(784,))
    x = Dense(64, activation="relu")(inputs)
    outputs = Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)

A model is itself a layer: it can be called on symbolic tensors inside another model, or be
an element of a `Sequential` one. `Sequential` is the linear special case (it builds the same
graph from its list of layers), so every model trains, evaluates, predicts, saves and prints
its summary through the same code (`multilayer.models.trainer`).

A subclass that only composes layers in ``call()`` is traced once, on symbolic inputs, into
the same graph (the first time the input shape is known):

    class TwoLayers(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = Dense(32, activation="relu"), Dense(1)

        def call(self, x):
            return self.out(self.hidden(x))

Parameters: the model allocates one flat value buffer and one gradient buffer for all the
layers it holds, nested models included (`multilayer.engine.parameters`); a nested model
works on its slice of its parent's buffers.
"""

from __future__ import annotations

import json

import numpy as np

from multilayer.engine import layers as layer_module
from multilayer.engine.config import resolve_dtype
from multilayer.engine.layers import InputLayer, Layer
from multilayer.engine.layers.base import _default_name, check_symbolic
from multilayer.engine.layers.symbolic import KerasTensor, Node
from multilayer.engine.parameters import ParameterBuffer
from multilayer.engine.random import generator_state, new_generator, set_generator_state
from multilayer.engine.variables import Variable
from multilayer.models.graph import Graph
from multilayer.models.outputs import OutputArray
from multilayer.models.trainer import Trainer

#: configuration keys of a functional model
_CONFIG_KEYS = {
    "name",
    "dtype",
    "layers",
    "inputs",
    "outputs",
    "input_structure",
    "output_structure",
}


class Model(Trainer, Layer):
    """A model: layers connected as a directed acyclic graph, from inputs to outputs.

    Args:
        inputs: the ``keras.Input`` tensor, or a list or dict of them.
        outputs: the output tensor(s), a tensor, list or dict.
        name: the model's name.
        dtype: ``"float32"`` (default) or ``"float64"``.
        seed: seed of the model's own random generator (weights, shuffling, dropout); drawn
            from the global generator (`multilayer.utils.set_random_seed`) when omitted.

    Raises:
        ValueError / TypeError: the graph is not valid (see `multilayer.models.graph.Graph`).
    """

    #: the ``class_name`` of this kind of model in configurations
    config_name = "Functional"
    #: whether the class makes its graph itself when built (`Sequential`)
    _builds_own_graph = False

    def __init__(
        self,
        inputs=None,
        outputs=None,
        name: str | None = None,
        dtype=None,
        seed: int | None = None,
        trainable: bool = True,
    ):
        default = "functional" if type(self) in (Model,) else None
        Layer.__init__(self, name=name or _default_name(default or type(self).__name__))
        Trainer.__init__(self)
        self.dtype = resolve_dtype(dtype)
        self.trainable = trainable
        self._seed = seed
        self.rng: np.random.Generator | None = None
        self.parameters: ParameterBuffer | None = None
        self.layers: list[Layer] = []
        self._graph: Graph | None = None
        self._regularized: list[Layer] | None = None  # leaves with a regularizer, once built
        self._input_structure: str | list[str] = "tensor"
        self._output_structure: str | list[str] = "tensor"
        if inputs is None and outputs is None:
            if type(self).call is Model.call and not self._builds_own_graph:
                raise TypeError(
                    "Model needs inputs and outputs: keras.Model(inputs, outputs), or a subclass "
                    "that defines call()"
                )
            return  # a subclass: traced when the input shape is known
        if inputs is None or outputs is None:
            raise TypeError("Model: give both inputs and outputs")
        input_list, self._input_structure = _flatten(inputs, "inputs")
        output_list, self._output_structure = _flatten(outputs, "outputs")
        self._set_graph(Graph(input_list, output_list, self.name))
        if not trainable:
            self.trainable = False  # now that the layers are known: freeze them all
        # The parameters are allocated on first use (fit, predict, get_weights, summary...),
        # so a file's architecture can be checked against the limits before any allocation.

    # -- trainable --------------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """As in Keras 3: setting a model's flag sets every layer's (nested models too). The
        optimizer reads the flags when the model is compiled: call compile() again after
        changing them (a layer added after compile() is read at the next fit)."""
        if not isinstance(value, bool):
            raise TypeError(f"trainable must be True or False, got {value!r}")
        self._trainable = value
        for layer in getattr(self, "layers", []):
            layer.trainable = value

    def _leaf_trainability(self, parent: bool = True) -> dict[int, bool]:
        """For every leaf layer (by ``id``): whether the optimizer may update its weights
        (its flag and those of every model holding it are True)."""
        on = parent and self.trainable
        flags: dict[int, bool] = {}
        for layer in self.layers:
            if isinstance(layer, Model):
                flags.update(layer._leaf_trainability(on))
            else:
                flags[id(layer)] = on and layer.trainable
        return flags

    # -- structure --------------------------------------------------------------------------
    def call(self, inputs):
        """Subclasses compose layers here; the result is traced once into the graph."""
        raise NotImplementedError

    def _raw_inputs(self) -> list[bool]:
        return list(self._built_graph().raw_inputs)

    def _built_graph(self) -> Graph:
        if self._graph is None:
            raise RuntimeError(f"model {self.name!r} is not built: its graph is not known yet")
        return self._graph

    def _set_graph(self, graph: Graph) -> None:
        self._graph = graph
        self.layers = graph.layers

    @property
    def inputs(self) -> list[KerasTensor]:
        return list(self._graph.inputs) if self._graph is not None else []

    @property
    def outputs(self) -> list[KerasTensor]:
        return list(self._graph.outputs) if self._graph is not None else []

    def _graph_tensors(self, kind: str):
        """``model.input`` or ``model.output`` (``kind``), building the model if it can."""
        if self._graph is None:
            self._build_if_possible()
        if self._graph is None:
            raise AttributeError(
                f"model {self.name!r} has no defined {kind} yet: build it first (an Input, "
                "input_shape=, or model.build((None, n)))"
            )
        if kind == "input":
            return _unflatten(list(self._graph.inputs), self._input_structure)
        return _unflatten(list(self._graph.outputs), self._output_structure)

    @property
    def input(self):
        """The model's input tensor (a list or dict for several), Keras' ``model.input``.

        Raises:
            AttributeError: the model is not built yet (its graph is not known).
        """
        return self._graph_tensors("input")

    @property
    def output(self):
        """The model's output tensor (a list or dict for several), Keras' ``model.output``.

        Raises:
            AttributeError: the model is not built yet (its graph is not known).
        """
        return self._graph_tensors("output")

    @output.setter
    def output(self, value) -> None:
        raise AttributeError("a model's output is its graph's: it cannot be set")

    @property
    def input_names(self) -> list[str]:
        if isinstance(self._input_structure, list):
            return list(self._input_structure)
        return [t.layer.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        if isinstance(self._output_structure, list):
            return list(self._output_structure)
        return [t.layer.name for t in self.outputs]

    def _output_count(self) -> int | None:
        return len(self._graph.outputs) if self._graph is not None else None

    def input_shapes(self) -> list[tuple[int, ...]] | None:
        """The sample shape of each input, or None while the model is not traced."""
        return list(self._graph.input_shapes) if self._graph is not None else None

    def output_shapes(self) -> list[tuple[int, ...]] | None:
        return list(self._graph.output_shapes) if self._graph is not None else None

    @property
    def input_shape(self):
        shapes = self.input_shapes()
        if shapes is None:
            return None
        return shapes[0] if self._input_structure == "tensor" else shapes

    @input_shape.setter
    def input_shape(self, value) -> None:  # Layer.__init__ sets it; a model derives it
        pass

    @property
    def output_shape(self):
        shapes = self.output_shapes()
        if shapes is None:
            return None
        return shapes[0] if self._output_structure == "tensor" else shapes

    @output_shape.setter
    def output_shape(self, value) -> None:
        pass

    @property
    def multi_input(self) -> bool:  # type: ignore[override]
        return self._graph is not None and len(self._graph.inputs) > 1

    # -- building ---------------------------------------------------------------------------
    def build(self, input_shape=None) -> None:
        """Trace the model if needed (a subclass, or a `Sequential` model without an input
        shape) for samples of ``input_shape``, then allocate the parameters."""
        if self.built:
            return
        self._make_graph(_sample_shape(input_shape))
        self._allocate()

    def _make_graph(self, input_shape=None) -> None:
        """Know the graph (trace a subclass for ``input_shape``); allocates nothing."""
        if self._graph is None:
            self._trace(input_shape)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every parameter tensor, by `named_weights` name, from the graph
        alone: nothing is allocated (file checks use it before building a loaded model)."""
        self._make_graph()
        shapes: dict[str, tuple[int, ...]] = {}
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Model):
                for name, shape in layer.parameter_shapes().items():
                    shapes[f"layers.{index}.{name}"] = shape
            else:
                for spec in layer.parameter_specs:
                    shapes[f"layers.{index}.{spec.name}"] = tuple(spec.shape)
        return shapes

    def non_trainable_names(self) -> list[str]:
        """The `named_weights` names of the non-trainable weights (moving statistics)."""
        self._make_graph()
        names: list[str] = []
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Model):
                names += [f"layers.{index}.{name}" for name in layer.non_trainable_names()]
            else:
                names += [
                    f"layers.{index}.{spec.name}"
                    for spec in layer.parameter_specs
                    if not spec.trainable
                ]
        return names

    def _trace(self, input_shape) -> None:
        if input_shape is None:
            raise ValueError(
                f"model {self.name!r} is not built: its input shape is unknown; call "
                "build(input_shape) or fit / predict with data"
            )
        multi = isinstance(input_shape, list)
        shapes = input_shape if multi else [input_shape]
        tensors = [InputLayer(shape=shape).output for shape in shapes]
        try:
            outputs = self.call(tensors if multi else tensors[0])
        except (TypeError, ValueError, AttributeError, NotImplementedError) as error:
            raise TypeError(
                f"{type(self).__name__}.call() could not be traced into a graph of layers: "
                "a subclassed Model is supported when call() only calls layers on its inputs "
                "and on the tensors they return (each layer once), and returns tensors. "
                f"The trace failed with: {error}"
            ) from error
        output_list, self._output_structure = _flatten(outputs, f"{type(self).__name__}.call()")
        self._input_structure = "list" if multi else "tensor"
        self._set_graph(Graph(tensors, output_list, self.name))

    def _allocate(self) -> None:
        if self.rng is None:
            self.rng = new_generator(self._seed)
        leaves = self.leaf_layers()
        for leaf in leaves:
            leaf.dtype = leaf.dtype or self.dtype
            if leaf.rng is None:
                leaf.rng = self.rng
        self.parameters = ParameterBuffer(leaves, self._model_dtype(), self.rng)
        for layer in self.layers:
            if isinstance(layer, Model):
                layer._adopt(self.parameters.view(layer.leaf_layers()), self.rng)
        self.built = True

    def _ensure_bound(self) -> None:
        """Before training: if another model sharing layers with this one allocated after
        it, the layers' weights live in that model's buffer; take them back (their current
        values are kept, in the same order, so the optimizer state still fits)."""
        if self.parameters is not None and not self.parameters.owns(self.leaf_layers()):
            leaves = self.leaf_layers()
            self.parameters = ParameterBuffer(leaves, self._model_dtype(), self._generator())
            for layer in self.layers:
                if isinstance(layer, Model):
                    layer._adopt(self.parameters.view(layer.leaf_layers()), self._generator())

    def _adopt(self, parameters: ParameterBuffer, rng: np.random.Generator) -> None:
        """Work on a slice of the parent model's buffers (this model is nested in it), and
        on the parent's generator unless it has its own."""
        self.parameters = parameters
        if self.rng is None:
            self.rng = rng
        for layer in self.layers:
            if isinstance(layer, Model):
                layer._adopt(parameters.view(layer.leaf_layers()), self.rng)
        self.built = True

    def _build_if_possible(self) -> None:
        if not self.built and self._graph is not None:
            self.build()

    def _ensure_built(self, shapes: list[tuple[int, ...]]) -> None:
        if not self.built:
            self.build(shapes if len(shapes) > 1 else shapes[0])

    def leaf_layers(self) -> list[Layer]:
        return [leaf for layer in self.layers for leaf in layer.leaf_layers()]

    def has_parameters(self) -> bool:
        return any(leaf.parameter_specs for leaf in self.leaf_layers())

    def zero_grads(self) -> None:
        for leaf in self.leaf_layers():
            leaf.zero_grads()

    def regularization_loss(self) -> float:
        regularized = self._regularized
        if regularized is None:
            regularized = [
                leaf
                for leaf in self.leaf_layers()
                if any(spec.regularizer is not None for spec in leaf.parameter_specs)
            ]
            if self.built:
                self._regularized = regularized  # layers cannot change once built
        return sum(leaf.regularization_loss() for leaf in regularized)

    @property
    def losses(self) -> list[np.ndarray]:
        """Keras' ``model.losses``: the penalties of every layer (see `Layer.losses`), whose
        sum the training loss adds to the data loss."""
        return [value for leaf in self.leaf_layers() for value in leaf.losses]

    def activity_loss(self) -> float:
        """The activity penalties (ActivityRegularization) of the last forward pass."""
        return sum(leaf.activity_loss() for leaf in self.leaf_layers())

    def release_buffers(self) -> None:
        for leaf in self.leaf_layers():
            leaf.release_buffers()

    def count_params(self) -> int:
        self._build_if_possible()
        if not self.built:
            raise ValueError("the model is not built yet, so it has no parameters")
        return self._buffer_of_parameters().total_size  # non-trainable weights too, as Keras

    def count_trainable_params(self) -> int:
        return sum(leaf.count_trainable_params() for leaf in self.leaf_layers())

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called ``name``, or the one at position ``index`` of `layers` (Keras'
        ``get_layer``: exactly one of the two).

        Raises:
            ValueError: both or neither given, no such layer, an index out of range.
        """
        if name is None and index is None:
            raise ValueError("Provide either a layer name or layer index at `get_layer`.")
        if name is not None and index is not None:
            raise ValueError(
                f"Provide only a layer name or a layer index. Received: index={index}, name={name}."
            )
        self._build_if_possible()
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise ValueError(f"get_layer: index must be an integer, got {index!r}")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model only has "
                    f"{len(self.layers)} layers."
                )
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name}. Existing layers are: {[layer.name for layer in self.layers]}."
        )

    # -- as a layer -------------------------------------------------------------------------
    def __call__(self, inputs, training: bool | None = None, **kwargs):
        """On symbolic tensors: add this model to a graph (like any layer). On arrays: the
        model's outputs (``predict``)."""
        flat, _ = _flatten_like(inputs, self._input_structure if self._graph else "tensor")
        if not any(isinstance(t, KerasTensor) for t in flat):
            if kwargs:
                raise TypeError(
                    f"model {self.name!r} got unexpected call arguments {sorted(kwargs)}"
                )
            if training:  # Keras' model(x, training=True): dropout on (Monte Carlo dropout)
                return _with_numpy(self._training_mode_outputs(inputs))
            return _with_numpy(self.predict(inputs))
        for tensor in flat:
            check_symbolic(tensor, self)
        if kwargs:
            raise TypeError(f"model {self.name!r} got unexpected call arguments {sorted(kwargs)}")
        if self.inbound_node is not None:
            raise ValueError(
                f"model {self.name!r} is already connected in a model graph; multilayer does not "
                "share a model between several calls"
            )
        shapes = [t.sample_shape for t in flat]
        self._make_graph(shapes if len(shapes) > 1 else shapes[0])
        expected = self._known(self.input_shapes())
        if shapes != expected:
            raise ValueError(
                f"model {self.name!r} expects inputs of shape "
                f"{[(None, *s) for s in expected]}, got {[(None, *s) for s in shapes]}"
            )
        shapes_out = self._known(self.output_shapes())
        outputs = [KerasTensor(shape, self, k) for k, shape in enumerate(shapes_out)]
        self.inbound_node = Node(self, flat, outputs)
        return _unflatten(outputs, self._output_structure)

    def forward(self, x, training: bool = False):
        outputs = self._built_graph().forward(x if self.multi_input else [x], training)
        return outputs[0] if len(outputs) == 1 else outputs

    def backward(self, grad, need_input_grad: bool = True, fused: bool = False):
        graph = self._built_graph()
        grads = grad if len(graph.outputs) > 1 else [grad]
        result = graph.backward(grads, [fused] * len(grads), need_input_grad)
        if result is None:
            return None
        return result if self.multi_input else result[0]

    @property
    def fusable_activation(self) -> str | None:
        if self._graph is None or len(self._graph.outputs) != 1:
            return None
        return self._graph.fusable(0)

    # -- the trainer's hooks ----------------------------------------------------------------
    def _run_forward(self, inputs: list[np.ndarray], training: bool) -> list[np.ndarray]:
        return self._built_graph().forward(inputs, training)

    def _run_backward(self, output_grads: list[np.ndarray], fused: list[bool]) -> None:
        self._built_graph().backward(output_grads, fused, False)

    def _run_backward_inputs(
        self, output_grads: list[np.ndarray], fused: list[bool]
    ) -> list[np.ndarray | None]:
        grads = self._built_graph().backward(output_grads, fused, True)
        assert grads is not None  # asked for
        return grads

    def _fusable(self, k: int) -> str | None:
        return self._built_graph().fusable(k)

    # -- weights and state --------------------------------------------------------------------
    def named_weights(self) -> dict[str, np.ndarray]:
        """Every parameter array (views), named ``layers.{index}.{kernel|bias}`` (nested
        models: ``layers.{index}.layers.{index}.kernel``), in model order."""
        self._build_if_possible()
        named = {}
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Model):
                for name, value in layer.named_weights().items():
                    named[f"layers.{index}.{name}"] = value
            else:
                for spec in layer.parameter_specs:
                    named[f"layers.{index}.{spec.name}"] = layer.weights[spec.name]
        return named

    @property  # type: ignore[override]
    def weights(self) -> list[Variable]:
        """Every weight as a `Variable` (``.numpy()``, ``.shape``, ``.name``, ``.path``),
        layer by layer in `get_weights` order (Keras' ``model.weights``)."""
        self._build_if_possible()
        return self._model_variables(None)

    @weights.setter
    def weights(self, value) -> None:  # Layer.__init__ sets a leaf's dict; a model has none
        pass

    @property
    def trainable_weights(self) -> list[Variable]:
        """The weights the optimizer updates: those of layers whose ``trainable`` flag is
        True, inside models whose flag is True (the current flags)."""
        self._build_if_possible()
        return self._model_variables(True)

    @property
    def non_trainable_weights(self) -> list[Variable]:
        """The other weights (frozen layers; a layer's own non-trainable statistics)."""
        self._build_if_possible()
        return self._model_variables(False)

    @property
    def variables(self) -> list[Variable]:
        return self.weights

    @property
    def trainable_variables(self) -> list[Variable]:
        return self.trainable_weights

    @property
    def non_trainable_variables(self) -> list[Variable]:
        return self.non_trainable_weights

    def _model_variables(self, trainable: bool | None, parent: bool = True) -> list[Variable]:
        on = parent and self.trainable
        found: list[Variable] = []
        for layer in self.layers:
            if isinstance(layer, Model):
                found += layer._model_variables(trainable, on)
                continue
            for variable in layer._variables():
                variable.trainable = variable.trainable and on
                if trainable is None or variable.trainable == trainable:
                    found.append(variable)
        return found

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every parameter array, layer by layer (kernel, then bias)."""
        self._build_if_possible()
        if not self.built:
            return []
        return [array.copy() for array in self._buffer_of_parameters().arrays()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set every parameter from a list shaped like `get_weights`'s result."""
        self._build_if_possible()
        if not self.built:
            raise ValueError("build the model (or fit it) before setting its weights")
        targets = self._buffer_of_parameters().arrays()
        if len(weights) != len(targets):
            raise ValueError(
                f"set_weights: expected a list of {len(targets)} arrays, got {len(weights)}"
            )
        for index, (target, value) in enumerate(zip(targets, weights, strict=True)):
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(
                    f"set_weights: array {index} has shape {value.shape}, expected {target.shape}"
                )
        for target, value in zip(targets, weights, strict=True):
            target[...] = value

    def get_state(self) -> dict:
        """The state of the model's random generators: ``{"rng": ..., "layer_rngs": {path:
        ...}}``, where a path is the layer's index (``"2"``, or ``"0.3"`` inside a nested
        model at index 0) and the generators are those layers own (a seeded Dropout, or a
        nested model's)."""
        layer_rngs: dict[str, dict] = {}
        for index, layer in enumerate(self.layers):
            state = layer.get_state()
            if isinstance(layer, Model):
                if layer.rng is not self.rng:  # its own generator, not the one it shares
                    layer_rngs[str(index)] = state["rng"]
                for path, inner in state["layer_rngs"].items():
                    layer_rngs[f"{index}.{path}"] = inner
            elif "rng" in state:
                layer_rngs[str(index)] = state["rng"]
        return {"rng": generator_state(self._generator()), "layer_rngs": layer_rngs}

    def set_state(self, state: dict) -> None:
        """Restore what `get_state` returned.

        Raises:
            ValueError: a malformed state, a path that is not a layer with its own generator,
                or a generator of another type.
        """
        if not isinstance(state, dict) or set(state) != {"rng", "layer_rngs"}:
            raise ValueError("a model state must be {'rng': ..., 'layer_rngs': {...}}")
        if not isinstance(state["layer_rngs"], dict):
            raise ValueError("layer_rngs must be a dict")
        self._build_if_possible()
        targets = self._generators()
        for path in state["layer_rngs"]:
            if path not in targets:
                raise ValueError(f"layer {path!r} has no random generator of its own")
        set_generator_state(self._generator(), state["rng"])
        for path, value in state["layer_rngs"].items():
            set_generator_state(targets[path], value)

    def _generators(self) -> dict[str, np.random.Generator]:
        found = {}
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Model):
                if layer.rng is not self.rng:
                    found[str(index)] = layer._generator()
                for path, generator in layer._generators().items():
                    found[f"{index}.{path}"] = generator
            elif layer.owns_rng and layer.rng is not None:
                found[str(index)] = layer.rng
        return found

    # -- description ----------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The architecture as JSON-serialisable data: every layer with the tensors it is
        called on (``inbound``: ``[layer name, output index]`` pairs), and the inputs and
        outputs (a subclassed model is saved as the graph it traced to)."""
        self._build_if_possible()
        if self._graph is None:
            raise ValueError(f"model {self.name!r} is not built: its graph is not known yet")
        layers = []
        for layer in self.layers:
            entry = serialize_layer(layer)
            node = layer.inbound_node
            entry["inbound"] = [[t.layer.name, t.index] for t in node.inputs] if node else []
            layers.append(entry)
        return {
            "name": self.name,
            "dtype": self._model_dtype().name,
            "layers": layers,
            "inputs": [[t.layer.name, t.index] for t in self._graph.inputs],
            "outputs": [[t.layer.name, t.index] for t in self._graph.outputs],
            "input_structure": self._input_structure,
            "output_structure": self._output_structure,
        }

    @classmethod
    def from_config(cls, config: dict) -> Model:
        """The model `get_config` described (layers calling one another in dependency order).

        Raises:
            ValueError: unknown keys or layer types, a reference to a missing layer, a cycle.
        """
        if not isinstance(config, dict):
            raise ValueError("the model configuration must be a JSON object")
        unexpected = set(config) - _CONFIG_KEYS
        if unexpected:
            raise ValueError(f"unexpected keys in the model configuration: {sorted(unexpected)}")
        entries = config.get("layers")
        if not isinstance(entries, list) or not entries:
            raise ValueError("a functional model configuration needs a list of layers")
        pending: dict[str, tuple[Layer, list]] = {}
        for entry in entries:
            if not isinstance(entry, dict) or "inbound" not in entry:
                raise ValueError(
                    f"a layer entry needs 'class_name', 'config' and 'inbound': {entry!r}"
                )
            inbound = entry["inbound"]
            layer = deserialize_layer({k: v for k, v in entry.items() if k != "inbound"})
            if layer.name in pending:
                raise ValueError(f"two layers are named {layer.name!r}")
            if not isinstance(inbound, list) or not all(_is_ref(ref) for ref in inbound):
                raise ValueError(f"layer {layer.name!r}: inbound must be [[name, index], ...]")
            pending[layer.name] = (layer, inbound)
        outputs: dict[str, list[KerasTensor]] = {}
        for name, (layer, inbound) in list(pending.items()):
            if isinstance(layer, InputLayer):
                if inbound:
                    raise ValueError(f"input layer {name!r} cannot have inbound tensors")
                outputs[name] = [layer.output]
                del pending[name]
        while pending:
            progressed = False
            for name, (layer, inbound) in list(pending.items()):
                for ref_name, _ in inbound:
                    if ref_name not in outputs and ref_name not in pending:
                        raise ValueError(
                            f"layer {name!r} is connected to unknown layer {ref_name!r}"
                        )
                if all(ref_name in outputs for ref_name, _ in inbound):
                    tensors = [_pick(outputs, ref, name) for ref in inbound]
                    if not tensors:
                        raise ValueError(f"layer {name!r} has no inbound tensors")
                    result = layer(tensors if layer.multi_input or len(tensors) > 1 else tensors[0])
                    outputs[name] = (
                        result
                        if isinstance(result, list)
                        else (list(result.values()) if isinstance(result, dict) else [result])
                    )
                    del pending[name]
                    progressed = True
            if not progressed:
                raise ValueError(
                    f"the model configuration has a cycle through layers {sorted(pending)}"
                )
        refs: dict[str, list] = {}
        for key in ("inputs", "outputs"):
            value = config.get(key)
            if not isinstance(value, list) or not value or not all(_is_ref(r) for r in value):
                raise ValueError(f"'{key}' must be a non-empty list of [layer name, index]")
            refs[key] = value
        inputs = [_pick(outputs, ref, "inputs") for ref in refs["inputs"]]
        outs = [_pick(outputs, ref, "outputs") for ref in refs["outputs"]]
        model = cls(
            _unflatten(inputs, _structure(config.get("input_structure"), len(inputs))),
            _unflatten(outs, _structure(config.get("output_structure"), len(outs))),
            name=config.get("name"),
            dtype=config.get("dtype"),
        )
        return model

    def to_json(self, **kwargs) -> str:
        """The architecture as JSON, in Keras' shape: ``{"class_name": "Sequential" or
        "Functional", "config": {...}, "module": ..., "registered_name": null}``; read back
        with ``keras.models.model_from_json``. ``kwargs`` are passed to ``json.dumps``
        (Keras' ``indent=...``)."""
        return json.dumps(
            {
                "module": "multilayer.models",
                "class_name": self.config_name,
                "config": self.get_config(),
                "registered_name": None,
            },
            **kwargs,
        )

    def summary(self, print_fn=print) -> None:
        """Print the layers, their output shapes, parameter counts and, for a graph that is
        not a plain stack, the layers each one is connected to (Keras' columns)."""
        from multilayer.models.summary import summary_text

        self._build_if_possible()
        print_fn(summary_text(self))

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Save the weights alone to a ``.weights.safetensors`` file (Keras' ``save_weights``)."""
        from multilayer.models.saving import save_weights

        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch: bool = False, by_name: bool = False) -> None:
        """Load weights saved by `save_weights` into this (built) model, matched by position,
        or by layer name with ``by_name=True``; ``skip_mismatch=True`` skips weights whose
        shapes differ (see `multilayer.models.saving.load_weights`)."""
        from multilayer.models.saving import load_weights

        load_weights(self, filepath, skip_mismatch=skip_mismatch, by_name=by_name)

    def save(self, filepath, include_optimizer: bool = True) -> None:
        """Save the architecture, weights and compile configuration to one file, in the format
        its extension names: ``.safetensors`` (multilayer's) or ``.keras`` (Keras 3). Another
        extension is a ValueError (see `multilayer.models.saving`)."""
        from multilayer.models.saving import save_model

        save_model(self, filepath, include_optimizer=include_optimizer)

    def export(
        self,
        filepath,
        format: str | None = None,
        verbose: bool | None = None,
        input_signature=None,
        **kwargs,
    ):
        """Export the model for inference in another runtime, as Keras 3's ``model.export``:
        ``format="onnx"`` (inferred from a ``.onnx`` name; ``opset_version=`` as in Keras) is
        the one format (`multilayer.export.onnx`, the ``onnx`` extra). Returns the path."""
        from multilayer.export.onnx import ExportError, export_model

        unknown = sorted(set(kwargs) - {"opset_version"})
        if unknown:
            raise ExportError(f"export: unexpected arguments {unknown} (only opset_version)")
        return export_model(self, filepath, format, verbose, input_signature, **kwargs)


# -- helpers ------------------------------------------------------------------------------------
def serialize_layer(layer: Layer) -> dict:
    if isinstance(layer, Model):
        return {"class_name": layer.config_name, "config": layer.get_config()}
    return layer_module.serialize(layer)


def deserialize_layer(config: dict) -> Layer:
    """A layer or a (nested) model from its `serialize_layer` dict."""
    if isinstance(config, dict) and set(config) == {"class_name", "config"}:
        from multilayer.models.sequential import Sequential

        for cls in (Model, Sequential):
            if config["class_name"] == cls.config_name:
                if not isinstance(config["config"], dict):
                    raise ValueError(f"invalid {cls.config_name} configuration")
                return cls.from_config(config["config"])
    return layer_module.deserialize(config)


def _sample_shape(input_shape):
    """Keras' ``build((None, 784))`` -> ``(784,)``; a shape without the batch entry is taken
    as the sample shape already (``build((784,))``); lists (several inputs) entry by entry."""
    if isinstance(input_shape, list):
        return [_sample_shape(shape) for shape in input_shape]
    if isinstance(input_shape, tuple) and input_shape and input_shape[0] is None:
        return tuple(input_shape[1:])
    return input_shape


def _with_numpy(result):
    """``model(x)`` on arrays: the outputs as `OutputArray` (``.numpy()`` works)."""
    if isinstance(result, np.ndarray):
        return result.view(OutputArray)
    if isinstance(result, list):
        return [_with_numpy(item) for item in result]
    if isinstance(result, dict):
        return {key: _with_numpy(item) for key, item in result.items()}
    return result


def _is_ref(ref) -> bool:
    return (
        isinstance(ref, list)
        and len(ref) == 2
        and isinstance(ref[0], str)
        and isinstance(ref[1], int)
        and not isinstance(ref[1], bool)
        and ref[1] >= 0
    )


def _pick(outputs: dict[str, list[KerasTensor]], ref: list, where: str) -> KerasTensor:
    name, index = ref
    if name not in outputs or index >= len(outputs[name]):
        raise ValueError(f"{where}: no output {index} of a layer named {name!r}")
    return outputs[name][index]


def _structure(value, count: int) -> str | list[str]:
    if value == "tensor" and count == 1:
        return "tensor"
    if value == "list":
        return "list"
    if isinstance(value, list) and len(value) == count and all(isinstance(k, str) for k in value):
        return list(value)
    raise ValueError(f"invalid input/output structure {value!r} for {count} tensor(s)")


def _flatten(value, what: str) -> tuple[list, str | list[str]]:
    """A tensor, list or dict of tensors -> (list, structure)."""
    if isinstance(value, dict):
        keys = list(value)
        if not keys or not all(isinstance(k, str) for k in keys):
            raise TypeError(f"{what}: a dict must map names (str) to tensors")
        return [value[k] for k in keys], keys
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{what}: an empty list")
        return list(value), "list"
    return [value], "tensor"


def _flatten_like(value, structure) -> tuple[list, str | list[str]]:
    if isinstance(structure, list) and isinstance(value, dict):
        missing = [k for k in structure if k not in value]
        if missing:
            raise ValueError(f"missing inputs {missing}")
        return [value[k] for k in structure], structure
    return _flatten(value, "inputs")


def _unflatten(values: list, structure):
    if structure == "tensor":
        return values[0]
    if structure == "list":
        return list(values)
    return dict(zip(structure, values, strict=True))
