"""Differentiable Functions, forward and backward side by side; array work only through
``self.be``."""
