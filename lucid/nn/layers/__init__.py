"""Layers; each file holds one family."""
