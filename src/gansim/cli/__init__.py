"""The ``gansim`` command line: thin typer commands that build a config and call the library."""
