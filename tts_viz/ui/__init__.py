"""Thin Gradio-facing pieces for app.py: classroom notes and the tree-click bridge script."""
