"""Tables as model input: the contract every table model follows, and how it is recorded.

**The run record.** A run trained on a table stores a :class:`TableSpec` in its
``config.json`` under the key ``"table"`` (``TableSpec.to_config()``); read it back with
``RunDir(path).table_spec()`` (``None`` for an image or array run). The spec names the
target column(s), the task, the class labels, and the input feature columns in order with
their kinds (``numeric``, ``categorical`` or ``boolean``, as :mod:`multilayer.data.tables`
infers them).

**The model contract.** A table model

- takes a dict of *raw* column arrays keyed by column name, one entry per name in
  ``spec.columns``: numeric and boolean columns as float arrays (missing values as NaN),
  categorical columns as object/str arrays (missing values as ``None``). All preprocessing
  (scaling, clipping, missing-value indicators, vocabularies, embeddings) is inside the model
  and saved in its file, so ``predict`` applies exactly what training learned; unseen
  categories go to an out-of-vocabulary bucket.
- outputs *final* units:

  - ``regression``: ``(n, 1)`` values in the target's own units (any standardisation of
    the target is a non-trainable layer inside the model);
  - ``binary``: ``(n, 1)`` sigmoid probability of ``classes[1]``;
  - ``multiclass``: ``(n, len(classes))`` softmax probabilities, in the order of ``classes``;
  - ``multilabel``: ``(n, len(classes))`` independent sigmoid probabilities, one per label
    column (``classes`` are then the label column names, equal to ``target``).
"""

from multilayer.tabular.spec import KINDS, TASKS, TableSpec

__all__ = ["KINDS", "TASKS", "TableSpec"]
