"""The learned CPU reranker: cheap features per (query, document) from the request alone
(two bi-encoder cosines, each also relative to the best in the window; the lexical match of
the query's English translation; model-number and brand agreement; the recall position when
the caller sends the documents in recall order), ranked by a LightGBM lambdarank model that
ships in ``models/``. ``python -m sidecar.ranker`` trains and reports it."""
