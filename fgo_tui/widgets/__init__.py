"""Widgets of FGO Studio."""
