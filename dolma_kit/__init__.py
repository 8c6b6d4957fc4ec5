"""dolma-kit: raw text shards to a language model, every step inspectable."""

__version__ = "0.1.0"
