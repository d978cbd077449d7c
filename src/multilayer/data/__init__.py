"""The data layer: IDX files, where datasets live, and verified downloads.

CSV/Parquet files and DataFrames: ``multilayer.data.tables`` (needs ``multilayer[tables]``).

Ready-made datasets are in ``multilayer.datasets``; array helpers (``to_categorical``,
``normalize``, ``train_validation_split``) in ``multilayer.utils``.
"""

from multilayer.data.download import fetch_file, fetch_files, file_md5
from multilayer.data.idx import read_idx, write_idx
from multilayer.data.paths import data_dir

__all__ = ["data_dir", "fetch_file", "fetch_files", "file_md5", "read_idx", "write_idx"]
