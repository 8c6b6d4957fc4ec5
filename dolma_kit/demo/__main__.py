"""`python -m dolma_kit.demo OUT`: the quick tag-only demo (see `dolma_kit.demo.quick`)."""

from dolma_kit.demo.quick import main

main()
