"""Operations: the JSON API, the console and the CLI (reading the other packages)."""
