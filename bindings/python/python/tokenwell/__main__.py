"""``python -m tokenwell ...``: the tokenwell command (see ``tokenwell.cli``)."""

from .cli import main

if __name__ == "__main__":
    main()
