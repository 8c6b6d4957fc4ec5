"""A suffix-array index over a tokenized folder: exact n-gram counts, occurrences, and output attribution.

`dolma-kit index TOKENS` builds it (`build.py`) with the `infini-gram` package's Rust indexer, straight over
our token files: infini-gram's suffix array is a table of byte offsets into a raw little-endian token file,
which is exactly what `part-<n>.npy` is, so the tokens are linked, never copied. Queries (`store.py`) go
through infini-gram's C++ engine (memory-mapped); occurrences are turned into documents with the provenance
index and into training steps with a run's data order (`schedule.py`). `attribute.py` finds the maximal
spans of a model output that occur verbatim in the corpus, as OLMoTrace does (`view.py`: JSON and HTML);
`repeats.py` lists the most repeated long spans per source. The commands are in `cli.py`. docs/content-trace.md
has the format and the figures.
"""
