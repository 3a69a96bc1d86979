"""The `supportlens` command line (see main.py); not part of what Lambda loads."""
