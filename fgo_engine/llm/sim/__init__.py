"""The simulated LLM ``fgo-sim``: a deterministic test bed, not a model."""
