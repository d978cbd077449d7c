"""The browser app: draw a digit and watch the network answer (``mlp serve``).

``multilayer.app.server.create_app(path)`` builds the FastAPI application; FastAPI, uvicorn
and python-multipart are optional (``pip install 'multilayer[app]'``) and imported only by
`multilayer.app.server`. `multilayer.app.predictor` runs a model with no web dependency.
"""
