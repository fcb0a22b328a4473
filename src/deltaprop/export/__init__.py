"""Exporting trained networks to other runtimes: ``onnx.to_onnx`` (the ``onnx`` extra)."""
