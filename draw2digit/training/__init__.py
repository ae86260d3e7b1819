"""Everything that makes or measures a model: training, evaluation, data, calibration fitting, reports.

The runtime (``draw2digit``) never imports this package; TensorFlow is imported when a function here
trains or loads a Keras model, not when a module is imported.
"""
