"""Presentation: terminal tables, charts and the HTML report. Reads results, never the engine."""
