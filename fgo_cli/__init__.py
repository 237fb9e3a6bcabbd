"""The ``fgo`` command line: headless runs, sessions, export, bench; opens the app lazily."""
