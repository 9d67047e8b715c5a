"""Rule: every flow a user can start is one typed function here; commands parse flags, call one, print."""
