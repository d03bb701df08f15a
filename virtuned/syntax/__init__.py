"""The trait language: grammar loading, text → AST, AST → canonical text."""
