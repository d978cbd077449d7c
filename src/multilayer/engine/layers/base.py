"""The base class of layers: a build step that sizes the layer, then forward and backward.

A layer is built once it knows the shape of one input sample (without the batch axis). Its
parameters are not allocated by the layer but by the model, inside one flat buffer
(`multilayer.engine.parameters`); the layer keeps views of them in ``weights`` and ``grads``.

Calling a layer on a symbolic tensor (``Dense(64)(inputs)``, with ``inputs = Input(shape=...)``)
builds it for that tensor's shape and records a `Node` of the model graph: which layer, on which
tensors, giving which tensor (see `multilayer.engine.layers.symbolic`). A layer is called at most
once: multilayer does not share one layer's weights between several places of a graph.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import DTypeLike

from multilayer.engine.config import resolve_dtype
from multilayer.engine.layers.symbolic import KerasTensor, Node
from multilayer.engine.parameters import ParameterSpec
from multilayer.engine.random import generator_state, set_generator_state
from multilayer.engine.registry import Config
from multilayer.engine.variables import Variable

if TYPE_CHECKING:
    from multilayer.engine.constraints import Constraint
    from multilayer.engine.initializers import Initializer
    from multilayer.engine.regularizers import Regularizer

_name_counters: defaultdict[str, itertools.count] = defaultdict(itertools.count)


def _default_name(cls_name: str) -> str:
    base = re.sub(r"(?<!^)(?=[A-Z])", "_", cls_name).lower()
    index = next(_name_counters[base])
    return base if index == 0 else f"{base}_{index}"


def next_uid(prefix: str) -> int:
    """Count one more use of ``prefix`` and return the count (1 the first time), sharing the
    counters of generated layer names (Keras' ``backend.get_uid``)."""
    return next(_name_counters[str(prefix)]) + 1


def reset_default_names() -> None:
    """Forget the names generated so far: the next ``Dense()`` is called ``"dense"`` again
    (what ``keras.backend.clear_session()`` does to names)."""
    _name_counters.clear()


class Layer:
    """Base class of all layers.

    Subclasses implement `build` (declare parameters with `add_weight`, set
    ``output_shape``), `forward` and `backward`. A layer with several inputs (the merge layers)
    sets ``multi_input = True``: its `build` gets a list of shapes, its `forward` a list of
    arrays, and its `backward` returns a list of gradients.

    Args:
        name: a unique name; generated from the class name when omitted.
        input_shape: the shape of one input sample, without the batch axis (Keras' argument,
            only meaningful on the first layer of a `Sequential` model).
        dtype: float type of the computation; the model's when omitted.
    """

    #: whether the layer takes a list of inputs (merge layers)
    multi_input = False
    #: whether ``rng`` is the layer's own generator (a seeded Dropout), not its model's
    owns_rng = False
    #: whether the layer takes raw table values as a model input: text (str/object arrays)
    #: and missing values (None, NaN). The trainer lets such values through to a model input
    #: only when every layer reading that input says so (StringLookup, IntegerLookup,
    #: Hashing, RobustScaling).
    accepts_raw_input = False

    def __init__(
        self,
        name: str | None = None,
        input_shape: int | Iterable[int] | None = None,
        dtype: DTypeLike | None = None,
        trainable: bool = True,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"a layer name must be a non-empty string, got {name!r}")
        if not isinstance(trainable, bool):
            raise TypeError(f"trainable must be True or False, got {trainable!r}")
        self.name = name or _default_name(type(self).__name__)
        self.dtype = None if dtype is None else resolve_dtype(dtype)
        self.trainable = trainable
        self.input_shape: tuple[int, ...] | None = (
            _as_shape(input_shape, "input_shape") if input_shape is not None else None
        )
        self.output_shape: tuple[int, ...] | None = None
        self.built = False
        self.parameter_specs: list[ParameterSpec] = []
        self.weights: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._workspace: dict[str, np.ndarray] = {}
        self.rng: np.random.Generator | None = None
        #: the graph node recorded when the layer was called on symbolic tensors
        self.inbound_node: Node | None = None
        #: the parameter buffer holding this layer's weights (set by the model that allocates)
        self.bound_to: object = None

    # -- the graph ----------------------------------------------------------------------
    def __call__(
        self,
        inputs: KerasTensor | Sequence[KerasTensor],
        training: bool | None = None,
        **kwargs: Any,
    ) -> KerasTensor:
        """Build the graph: ``Dense(64)(tensor)`` returns the symbolic output tensor.

        ``training`` is accepted for Keras code (``dropout(x, training=training)``) and
        ignored: fit runs the graph in training mode, evaluate and predict do not.

        Raises:
            TypeError: ``inputs`` are not symbolic tensors (e.g. a NumPy array: use
                ``model.predict`` to compute outputs), or a layer with one input got several.
            ValueError: the layer was already called, or the shapes do not fit it.
        """
        if kwargs:
            raise TypeError(
                f"layer {self.name!r} ({type(self).__name__}) got unexpected call arguments "
                f"{sorted(kwargs)}"
            )
        given = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        tensors = [check_symbolic(tensor, self) for tensor in given]
        if not self.multi_input and len(tensors) != 1:
            raise TypeError(
                f"layer {self.name!r} ({type(self).__name__}) takes one input tensor, got "
                f"{len(tensors)}: {[t.shape for t in tensors]}"
            )
        if self.inbound_node is not None:
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) is already connected in a model "
                f"graph; multilayer does not share a layer between several calls: create a new "
                f"{type(self).__name__} layer"
            )
        shapes = [t.sample_shape for t in tensors]
        self.build_for(shapes if self.multi_input else shapes[0])
        outputs = [KerasTensor(cast(tuple[int, ...], self.output_shape), self, 0)]  # built
        self.inbound_node = Node(self, tensors, outputs)
        return outputs[0]

    @property
    def output(self) -> KerasTensor:
        """The symbolic tensor this layer returned when called in a model graph (Keras'
        ``layer.output``: ``keras.Model(model.inputs, model.get_layer("hidden").output)``).

        Raises:
            AttributeError: the layer was never called on a symbolic tensor.
        """
        declared = self.__dict__.get("_output")
        if declared is not None:
            return declared
        node = self.inbound_node
        if node is None or not node.outputs:
            raise AttributeError(
                f"layer {self.name!r} has never been called and thus has no defined output "
                "(call it on a tensor, or build the model holding it first)"
            )
        return node.outputs[0]

    @output.setter
    def output(self, value: KerasTensor) -> None:  # InputLayer declares its tensor
        self.__dict__["_output"] = value

    @property
    def input(self) -> KerasTensor | list[KerasTensor]:
        """The symbolic tensor(s) the layer was called on (a list for a merge layer).

        Raises:
            AttributeError: the layer was never called on a symbolic tensor.
        """
        node = self.inbound_node
        if node is None:
            raise AttributeError(
                f"layer {self.name!r} has never been called and thus has no defined input"
            )
        return list(node.inputs) if self.multi_input else node.inputs[0]

    def build_for(self, input_shape: Sequence[Any]) -> None:
        """`build` the layer for ``input_shape`` (one sample shape; a list of them for a
        ``multi_input`` layer) unless it is already built for it.

        Raises:
            ValueError: the layer is built for another input shape.
        """
        if self.built:
            if self.multi_input:
                same = [tuple(s) for s in input_shape] == list(self.input_shape or [])
            else:
                same = tuple(input_shape) == self.input_shape
            if not same:
                raise ValueError(
                    f"layer {self.name!r} ({type(self).__name__}) is built for inputs of shape "
                    f"{_batch_shapes(self.input_shape, self.multi_input)}, got "
                    f"{_batch_shapes(input_shape, self.multi_input)}"
                )
            return
        declared = None if self.multi_input else self.input_shape
        if declared is not None and tuple(input_shape) != declared:
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) was declared with "
                f"input_shape={declared}, but it is called on inputs of shape "
                f"{_batch_shapes(input_shape, False)}"
            )
        shape = [tuple(s) for s in input_shape] if self.multi_input else tuple(input_shape)
        self.build(shape)  # type: ignore[arg-type]  # a list of shapes for multi-input layers

    # -- building -----------------------------------------------------------------------
    def build(self, input_shape: tuple[int, ...]) -> None:
        """Size the layer for samples of shape ``input_shape``. Default: shape-preserving."""
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(input_shape)
        self.built = True

    def add_weight(
        self,
        name: str,
        shape: Iterable[int],
        initializer: Initializer,
        regularizer: Regularizer | None = None,
        trainable: bool = True,
        constraint: Constraint | None = None,
    ) -> None:
        """Declare a weight; the model allocates it. ``trainable=False`` declares a weight the
        layer updates itself (no gradient, never touched by the optimizer); ``constraint`` is
        applied after each optimizer step."""
        self.parameter_specs.append(
            ParameterSpec(name, tuple(shape), initializer, regularizer, trainable, constraint)
        )

    def bind_parameter(
        self, name: str, value: np.ndarray, grad: np.ndarray | None, buffer: object = None
    ) -> None:
        """Use ``value`` and ``grad`` (views into ``buffer``, a model's parameter buffer);
        ``grad`` is None for a non-trainable weight."""
        self.weights[name] = value
        if grad is not None:
            self.grads[name] = grad
        self.bound_to = buffer

    # -- computation --------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Compute the output for a batch ``x`` of shape ``(n, *input_shape)``."""
        raise NotImplementedError

    def backward(
        self, grad: np.ndarray, need_input_grad: bool = True, fused: bool = False
    ) -> np.ndarray | None:
        """Given dL/d(output) of the last `forward`, fill ``grads`` and return dL/d(input).

        ``grad`` may be overwritten. Returns None when ``need_input_grad`` is False (the first
        layer: nobody needs the gradient with respect to the data). ``fused=True`` (only
        passed to a layer whose `fusable_activation` the loss absorbed) says that ``grad`` is
        already the gradient with respect to the input of the layer's activation (softmax or
        sigmoid before a cross-entropy, see `multilayer.engine.losses`); layers without an
        activation have nothing to skip and ignore it. Multi-input layers (``multi_input``)
        return a list, one gradient per input.
        """
        raise NotImplementedError

    @property
    def fusable_activation(self) -> str | None:
        """The name of the output activation whose derivative `backward(fused=True)` skips
        (softmax or sigmoid before a cross-entropy), or None."""
        return None

    def zero_grads(self) -> None:
        """Set this layer's parameter gradients to zero (no gradient reached it)."""
        for grad in self.grads.values():
            grad.fill(0)

    def has_parameters(self) -> bool:
        return bool(self.parameter_specs)

    def leaf_layers(self) -> list[Layer]:
        """The layers that own parameters buffers: the layer itself (a model: its layers)."""
        return [self]

    # -- state ----------------------------------------------------------------------------
    def get_state(self) -> dict:
        """The layer's own state besides its weights: the state of its own random generator
        (a seeded Dropout), as a JSON-serialisable dict ({} when it has none)."""
        if self.rng is None or not self._owns_generator():
            return {}
        return {"rng": generator_state(self.rng)}

    def set_state(self, state: dict) -> None:
        """Restore what `get_state` returned.

        Raises:
            ValueError: a malformed state, or one for another kind of generator.
        """
        if not isinstance(state, dict) or set(state) - {"rng"}:
            raise ValueError(f"layer {self.name!r}: invalid state {state!r}")
        if "rng" in state:
            if self.rng is None:
                raise ValueError(f"layer {self.name!r} has no random generator to restore")
            set_generator_state(self.rng, state["rng"])

    def _owns_generator(self) -> bool:
        return self.rng is not None and self.owns_rng

    def regularization_loss(self) -> float:
        """The weight penalties of this layer (Keras' kernel/bias/... regularizers)."""
        return sum(
            spec.regularizer(self.weights[spec.name])
            for spec in self.parameter_specs
            if spec.regularizer is not None
        )

    def activity_loss(self) -> float:
        """The penalty on the output of the last `forward` (ActivityRegularization); 0 here."""
        return 0.0

    @property
    def losses(self) -> list[np.ndarray]:
        """Keras' ``layer.losses``: one scalar per regularized weight (its penalty now), then
        the activity penalty of the last forward pass for layers that have one."""
        values = [
            np.asarray(spec.regularizer(self.weights[spec.name]), dtype=np.float32)
            for spec in self.parameter_specs
            if spec.regularizer is not None and spec.name in self.weights
        ]
        if type(self).activity_loss is not Layer.activity_loss:
            values.append(np.asarray(self.activity_loss(), dtype=np.float32))
        return values

    def _buffer(self, key: str, n: int, shape: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
        """A reusable work array of ``n`` rows: grown when needed, never freed between batches."""
        buffer = self._workspace.get(key)
        if (
            buffer is None
            or buffer.shape[0] < n
            or buffer.shape[1:] != shape
            or buffer.dtype != dtype
        ):
            buffer = np.empty((max(n, 1), *shape), dtype=dtype)
            self._workspace[key] = buffer
        return buffer[:n]

    def release_buffers(self) -> None:
        """Drop the work arrays (and the references to the last batch) to free memory."""
        self._workspace.clear()

    # -- Keras' weight lists -------------------------------------------------------------
    def __getattr__(self, name: str) -> Variable:
        # Keras' weight attributes (``dense.kernel``, ``dense.bias``, ``bn.moving_mean``...):
        # only reached when normal lookup fails, so attributes and properties win.
        attribute = getattr(type(self), name, None)
        if isinstance(attribute, property):  # a property raised AttributeError: keep its message
            return attribute.fget(self)  # type: ignore[misc]
        for spec in self.__dict__.get("parameter_specs", ()):
            if spec.name == name:
                return Variable(self, name, self.trainable and getattr(spec, "trainable", True))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _variables(self, trainable: bool | None = None) -> list[Variable]:
        """This layer's weights as `Variable` objects, in declaration order; ``trainable``
        picks the trainable (layer flag on and weight trainable) or the other ones."""
        found = []
        for spec in self.parameter_specs:
            is_trainable = self.trainable and getattr(spec, "trainable", True)
            if trainable is None or is_trainable == trainable:
                found.append(Variable(self, spec.name, is_trainable))
        return found

    @property
    def trainable_weights(self) -> list[Variable]:
        """The weights the optimizer updates (none when ``trainable`` is False), Keras'
        ``layer.trainable_weights``."""
        return self._variables(True)

    @property
    def non_trainable_weights(self) -> list[Variable]:
        """The weights the optimizer leaves alone (all of them when ``trainable`` is False)."""
        return self._variables(False)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the layer's weights in declaration order (``[kernel, bias]`` for Dense);
        ``[]`` while the model holding the layer has not allocated them."""
        if any(spec.name not in self.weights for spec in self.parameter_specs):
            return []
        return [self.weights[spec.name].copy() for spec in self.parameter_specs]

    def set_weights(self, weights: list) -> None:
        """Set the layer's weights from a list shaped like `get_weights`'s result.

        Raises:
            ValueError: the layer's weights are not allocated yet, or the number of arrays
                or a shape differs.
        """
        specs = self.parameter_specs
        if len(weights) != len(specs):
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) has {len(specs)} weights, "
                f"set_weights got {len(weights)} arrays"
            )
        if any(spec.name not in self.weights for spec in specs):
            raise ValueError(
                f"layer {self.name!r} has no weights allocated yet: build the model holding "
                "it first (model.build, fit or predict)"
            )
        arrays = [np.asarray(value) for value in weights]
        for spec, value in zip(specs, arrays, strict=True):
            if value.shape != tuple(spec.shape):
                raise ValueError(
                    f"layer {self.name!r}: weight {spec.name!r} has shape {tuple(spec.shape)}, "
                    f"set_weights got an array of shape {value.shape}"
                )
        for spec, value in zip(specs, arrays, strict=True):
            self.weights[spec.name][...] = value

    # -- description --------------------------------------------------------------------
    def count_params(self) -> int:
        """Every weight, trainable or not (as Keras counts)."""
        return sum(spec.size for spec in self.parameter_specs)

    def count_trainable_params(self) -> int:
        return sum(spec.size for spec in self.parameter_specs if spec.trainable)

    def get_config(self) -> Config:
        config: Config = {"name": self.name}
        if self.input_shape is not None:
            config["input_shape"] = list(self.input_shape)
        if not self.trainable:
            config["trainable"] = False  # a frozen layer stays frozen when loaded
        return config

    @classmethod
    def from_config(cls, config: Config) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} output_shape={self.output_shape}>"


def check_symbolic(value: object, layer: Layer) -> KerasTensor:
    """``value`` if it is a symbolic tensor; anything else, as the input of a layer call, is
    refused."""
    if isinstance(value, KerasTensor):
        return value
    where = f"layer {layer.name!r} ({type(layer).__name__})"
    if isinstance(value, np.ndarray):
        raise TypeError(
            f"{where} was called on a NumPy array of shape {value.shape}, but layers are called "
            "on symbolic tensors to build a model: inputs = keras.Input(shape="
            f"{tuple(value.shape[1:])}), then outputs = layer(inputs) and "
            "keras.Model(inputs, outputs). To compute outputs for data, use model.predict(x)."
        )
    raise TypeError(
        f"{where} was called on a {type(value).__name__}, expected a symbolic tensor from "
        "keras.Input(shape=...) or from another layer"
    )


def _batch_shapes(shape: Any, multi: bool) -> str:
    if multi:
        return "[" + ", ".join(str((None, *s)) for s in shape or []) + "]"
    return str((None, *shape)) if shape is not None else "(unknown)"


def _as_shape(shape: Any, argument: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        result = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"{argument} must be a tuple of positive integers, got {shape!r}"
        ) from None
    if (
        not result
        or any(s <= 0 for s in result)
        or any(isinstance(s, float) and not float(s).is_integer() for s in shape)
    ):
        raise ValueError(f"{argument} must be a tuple of positive integers, got {shape!r}")
    return result
