"""mailcanary: tells a mail admin that an account is broken before its users do."""

__version__ = "0.1.0"
