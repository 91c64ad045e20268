"""The spec layer: rule files and scenarios, loaded with positions and validated."""
