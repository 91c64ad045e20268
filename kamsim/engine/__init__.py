"""The simulation engine: SimPy calendar and resources over numpy account state."""
