"""Everything that talks to a model goes through :mod:`fgo_engine.llm.gateway`."""
