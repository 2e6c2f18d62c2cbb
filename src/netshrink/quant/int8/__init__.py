"""Integer programs: a statically quantized model run with activations kept in int8."""
