"""One module per command group; each exposes ``register(app)``.

Command modules import heavy libraries (dask, streamlit, sqlalchemy) inside
their functions so that ``residuals --help`` stays fast.
"""
