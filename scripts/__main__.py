"""``python -m scripts`` runs the ``loa`` command line."""

from scripts.cli import main

main()
