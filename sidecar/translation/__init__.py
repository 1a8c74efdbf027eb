"""Query translation into the catalog's language (English), for BM25 and k-NN.

Backends share one protocol (:class:`Translator`, returning a :class:`Translation`):
:class:`DictionaryTranslator` (glossary, installed dictionaries with catalog-aware sense choice,
word neighbours), :class:`NeighbourTranslator`, and :class:`ChainTranslator` to put an LLM
translator in front of them. Importing this package loads nothing."""
