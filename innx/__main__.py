"""``python -m innx``: the same as the ``innx`` console script."""

from innx.cli.app import main

if __name__ == "__main__":
    main()
