"""The pipelines behind the routes, callable without Flask (a benchmark or a CLI calls the
same service): ``rerank`` (localize, instruction, score with fallback, blend, rank) and
``embed`` (score, Matryoshka truncation, encoding)."""
