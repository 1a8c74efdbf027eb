"""Query translation into the catalog's language (English), for BM25 and k-NN.

Backends share one protocol (:class:`Translator`, returning a :class:`Translation`):
:class:`DictionaryTranslator` (glossary, installed dictionaries with catalog-aware sense choice,
word neighbours), :class:`NeighbourTranslator`, and :class:`ChainTranslator` to put an LLM
translator in front of them. Importing this package loads nothing."""

from sidecar.translation.base import ChainTranslator, Term, Translation, Translator
from sidecar.translation.dictionary import DictionaryTranslator
from sidecar.translation.glossary import Glossary
from sidecar.translation.neighbours import NeighbourTranslator, UseEmbedder, WordNeighbours
from sidecar.translation.vocabulary import Vocabulary, build_vocabulary

__all__ = [
    "ChainTranslator",
    "DictionaryTranslator",
    "Glossary",
    "NeighbourTranslator",
    "Term",
    "Translation",
    "Translator",
    "UseEmbedder",
    "Vocabulary",
    "WordNeighbours",
    "build_vocabulary",
]
