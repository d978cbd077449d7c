"""The NumPy engine: layers with explicit forward and backward passes, activations, losses,
optimizers and the flat parameter buffer they share. Nothing here knows about files, the
command line or the web."""
