"""SLM Workbench."""
