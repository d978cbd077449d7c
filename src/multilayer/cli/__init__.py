"""The ``mlp`` command line (``pip install 'multilayer[cli]'``).

The app and the ``main()`` entry point are in `multilayer.cli.main`; each command lives in
its own module (``train``, ``evaluate``, ``predict``, ``info``). Nothing is imported here, so
that ``python -m multilayer.cli.main`` and the ``mlp`` script load each module once.
"""
