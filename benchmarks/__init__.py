"""Side-by-side benchmarks of multilayer against PyTorch, scikit-learn and Keras (see README.md)."""
