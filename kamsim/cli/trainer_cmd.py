"""Placeholder: filled in by the trainer_cmd work."""
