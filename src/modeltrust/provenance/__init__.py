"""Who published a model: OpenSSF model signatures (verify and sign) over a
manifest of file digests. `model_signing` is imported only by `backend`, and
only when a command needs it (it costs 0.8 s to import)."""
