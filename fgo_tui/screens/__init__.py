"""Screens of FGO Studio."""
