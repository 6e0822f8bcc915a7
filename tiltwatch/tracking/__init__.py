"""Identity across frames (track ids) and per-track temporal smoothing."""
