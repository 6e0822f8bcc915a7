"""Models shipped with tiltwatch: ONNX emotion models with JSON model cards, the 3D head model."""
