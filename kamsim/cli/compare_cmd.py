"""Placeholder: filled in by the compare_cmd work."""
