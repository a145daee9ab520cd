"""The `domain` probe kind: a sending domain's DNS (SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT),
its MX hosts' STARTTLS, and its sending IPs on DNS blocklists (docs/deliverability.md).

`probe` orchestrates; one module per check family; `records` parses the policy formats.
"""
