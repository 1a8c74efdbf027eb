"""Relevance and speed evaluation of search configurations on judged queries.

``python -m evaluation`` (console script ``eval-search``) runs every query of a query set
against a cluster under several named configurations (a query template plus a search
pipeline, from a small JSON file), scores the result lists against graded judgments with
ir-measures (nDCG@10, recall@100, MRR@10, P@10, judged@10, and the condensed-list
variants), overall and per language, with bootstrap confidence intervals and paired
randomization tests, measures the search latency through OpenSearch and the sidecar's share
of it, and writes a report (markdown, PNG plots, JSON).

Modules: ``data`` (query sets and judgments), ``config`` (configurations), ``metrics``
(per-query scores, intervals, tests), ``search`` (running configurations, latency, the
sidecar's /metrics), ``pooling`` (unjudged results out for raters, their ratings back in),
``report`` (markdown, plots, JSON), ``cli``.
"""
