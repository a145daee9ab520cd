"""Inbound watches: mail that another system sends (sign-up, password reset, 2FA codes).

`probe` runs one watch (triggered: call the app's test endpoint, then watch the mailbox;
passive: look for a recent matching arrival); `message` decodes and matches a message;
`finder` looks for it over IMAP; `trigger` is the HTTP call; `memory` what survives a run.
"""
