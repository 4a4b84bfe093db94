"""firmware_sim: a simulated NEMA dual-ring signal controller with an MMU, for tests and demos."""
