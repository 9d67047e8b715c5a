"""From video files to contract rows: decode, cut shots, encode.

Rule: this package reads video files and returns frames and arrays; it never
writes a contract table itself (the workflow in
:mod:`residuals.workflows.ingest` does, atomically) and never fetches model
weights: an encoder is built in, a local ONNX file, or a package installed
with the ``captions`` extra.
"""
