"""``python -m cxm …`` is the ``cxm`` command (``cxm serve --worker`` starts its worker so)."""

from cxm.cli import main

if __name__ == "__main__":
    main()
