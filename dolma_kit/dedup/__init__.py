"""Deduplication: exact (URL / document / paragraph) and MinHash near-duplicates. Both write attributes;
`mix` decides what to drop (DESIGN §2, §5)."""
