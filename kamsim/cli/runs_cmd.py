"""Placeholder: filled in by the runs_cmd work."""
