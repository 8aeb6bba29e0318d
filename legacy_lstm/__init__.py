"""legacy_lstm: graph-mode (tf.compat.v1) reference ports of five classic LSTM tutorials.

Importing the package does not import TensorFlow; `legacy_lstm.compat` is the one module that does.
"""

__version__ = "0.1.0"
