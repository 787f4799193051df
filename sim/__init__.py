"""Simulation core: world data, supply graph, market clearing, origin tracing, model, recorder."""
