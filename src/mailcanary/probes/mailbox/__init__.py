"""Watching a mailbox for a message, shared by round trips and inbound watches: the
`Watcher` (IDLE plus quick checks, Junk folders, re-open on a lost connection) and what a
found message's headers say (`headers`)."""
