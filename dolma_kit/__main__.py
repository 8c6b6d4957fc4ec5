"""`python -m dolma_kit` = the `dolma-kit` command."""

from dolma_kit.cli import main

if __name__ == "__main__":
    main()
