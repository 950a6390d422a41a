"""Pure logic of the hub: events, vocabulary, relations. Imports no I/O library."""
