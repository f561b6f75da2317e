"""Shared by every context: the settings schema, the cohort and roster, safe file access.

Nothing here imports JupyterHub, a service or the CLI.
"""
