"""Ranking sidecar: a rerank and embedding service for OpenSearch."""

__version__ = "0.1.0"
