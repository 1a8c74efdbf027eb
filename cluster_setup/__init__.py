"""Setting a cluster up for the sidecar (``sidecar-setup``), and what every client of that
cluster shares: the connection flags, the query bodies, the setup state recorded in the
index template, the search pipelines' names and results.

``queries``, ``state`` and ``pipelines`` import nothing heavy (no opensearch-py): the
sidecar's search page uses them too.
"""
