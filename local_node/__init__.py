"""A real single-node OpenSearch without Docker, from Maven Central (``opensearch-node``)."""
