"""``python -m gansim`` (and ``torchrun -m gansim``) runs the command line."""

from gansim.cli.main import main

main()
