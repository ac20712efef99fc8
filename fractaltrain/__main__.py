"""Allow ``python -m fractaltrain``."""

from fractaltrain.cli import main

if __name__ == "__main__":
    main()
