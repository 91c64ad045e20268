"""Placeholder: filled in by the report_cmd work."""
