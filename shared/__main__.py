"""``python -m genforge`` (and ``torchrun -m genforge``): the same entry point as the ``genforge`` script."""

from genforge.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
