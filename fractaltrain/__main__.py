"""Allow ``python -m fractaltrain``.

Only :mod:`fractaltrain.entry` is imported here, so its Ctrl-C handler is in
place before the command line's heavy imports start.
"""

from fractaltrain.entry import main

if __name__ == "__main__":
    main()
