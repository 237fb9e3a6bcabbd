"""The app's model: run state, event buffering, the run controller, views read from a session.

Nothing here imports Textual; widgets and screens render what these modules hold.
"""
