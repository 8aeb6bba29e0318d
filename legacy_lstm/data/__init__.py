"""Data readers: pure Python/NumPy, no TensorFlow, no model code."""
