"""Placeholder: filled in by the dmu_cmd work."""
