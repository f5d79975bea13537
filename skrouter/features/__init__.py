"""Featurizers: scikit-learn transformers that turn queries into vectors."""

__all__ = []
