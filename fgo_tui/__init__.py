"""FGO Studio TUI."""
