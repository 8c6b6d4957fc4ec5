"""The demo: a generated corpus with planted duplicates, PII and contamination (`corpus`, `text`), which
`make demo` runs end to end through `pipelines/demo.yaml`, and the quick tag-only demo (`quick`)."""
