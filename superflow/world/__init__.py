"""The mini world: a procedurally generated text-to-image world for CPU experiments."""
