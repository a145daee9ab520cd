"""What a person should do about each reason: the hint prose, kept apart from the logic.

Every reason of the taxonomy has a hint here, and every hint has a Japanese translation in
``locale/ja/LC_MESSAGES/mailcanary.po`` (tests/test_i18n.py fails otherwise). A new reason:
add its English sentence here inside ``N_(...)``, then ``./scripts/i18n.sh`` and translate the
new entry (see the catalog's header).
"""

from __future__ import annotations

from mailcanary.i18n import N_

HINTS: dict[str, str] = {
    "ok": "",
    "nxdomain": N_(
        "The host name {host} does not exist in DNS. Check the spelling of the host in the config,"
        " or the domain's DNS records."),
    "dns_error": N_(
        "The DNS lookup of {host} failed. Check this machine's resolver (/etc/resolv.conf) and "
        "that the DNS server answers."),
    "connection_refused": N_(
        "Nothing accepts connections on {host}:{port}. Check the port number, that the mail "
        "service runs, and any firewall in between."),
    "unreachable": N_(
        "There is no network route to {host}. Check this machine's network, routes and firewall "
        "(IPv6 without a route is a common cause)."),
    "connection_reset": N_(
        "The server closed the connection unexpectedly. It may be overloaded, blocking this "
        "client's IP, or a firewall or proxy may be cutting the session."),
    "timeout": N_(
        "No answer within the timeout during {phase}. Check that {host}:{port} is reachable and "
        "that the port's security setting (tls or starttls) matches the server."),
    "cert_expired": N_(
        "The server's TLS certificate has expired (or is not yet valid). Renew the certificate on "
        "{host}, or check this machine's clock."),
    "cert_untrusted": N_(
        "The server's TLS certificate is not signed by a trusted CA (self-signed or unknown "
        "issuer). Install a publicly trusted certificate or point ca_file at the CA."),
    "hostname_mismatch": N_(
        "The TLS certificate is not valid for {host}. Connect using a name the certificate lists, "
        "or reissue the certificate with this name."),
    "handshake_failed": N_(
        "The TLS handshake failed. Check that this port speaks TLS as configured "
        "(security = \"tls\" for implicit TLS, \"starttls\" otherwise) and that the server "
        "allows TLS 1.2 or newer."),
    "starttls_unavailable": N_(
        "The server did not offer STARTTLS, so the password would go in clear text. Enable "
        "STARTTLS on the server or use the implicit-TLS port."),
    "tls_required": N_(
        "The server refuses to log in without TLS. Set security = \"starttls\" or \"tls\" for this "
        "endpoint."),
    "invalid_credentials": N_(
        "The server rejected the username or password. Check whether the password was changed, and"
        " that the username is the full address if the provider expects it."),
    "app_password_required": N_(
        "The provider requires an app password (or OAuth2) for mail programs. Create an app "
        "password in the account's security settings and use it here, or configure oauth2."),
    "basic_auth_disabled": N_(
        "The provider has disabled password (basic) authentication for this protocol. Use oauth2, "
        "or ask the tenant admin to re-enable SMTP AUTH / basic auth for this mailbox."),
    "web_login_required": N_(
        "The provider wants a sign-in through a web browser first (security check). Log in to "
        "webmail once from this network, confirm the prompt, then retry."),
    "account_locked": N_(
        "The account is locked or throttled after too many failed logins. Wait, unlock it at the "
        "provider, and fix the password before the next attempts."),
    "mechanism_unsupported": N_(
        "The server and mailcanary share no authentication mechanism. Check which AUTH mechanisms "
        "the server offers (the transcript shows them)."),
    "oauth_token_error": N_(
        "The OAuth2 token endpoint refused to issue a token (see detail). Re-authorize the account"
        " (mailcanary oauth2 authorize) or fix the client id/secret."),
    "protocol_disabled": N_(
        "{proto_upper} access is disabled for this account. Enable it in the mailbox settings (or "
        "the tenant's admin center) and retry."),
    "recipient_rejected": N_(
        "The server refused the recipient address. Check that the receiving mailbox exists and "
        "accepts mail."),
    "sender_rejected": N_(
        "The server refused the sender address. The account may not be allowed to send as this "
        "address."),
    "relay_denied": N_(
        "The server refused to relay to this recipient. Authenticate before sending (submission "
        "port with AUTH) or allow relaying for this account."),
    "policy_rejected": N_(
        "The message was refused by a policy (blocklist, SPF/DKIM/DMARC or content rule). The "
        "detail names the rule; fix the sender's DNS records or reputation."),
    "message_rejected": N_(
        "The server refused the message itself. The detail says why (size, content or format)."),
    "mailbox_full": N_(
        "The mailbox is over its quota. Free space or raise the quota."),
    "sending_limit": N_(
        "The account hit its sending limit. Lower the canary rate or raise the account's limit."),
    "rate_limited": N_(
        "The server is throttling this client. Probe less often or ask the provider to raise the "
        "limit."),
    "too_many_connections": N_(
        "The server refuses more simultaneous connections from this account or IP. Close other "
        "clients' idle sessions or raise the server's connection limit."),
    "unavailable": N_(
        "The server says it is temporarily unavailable. If this lasts, check the server's health "
        "and logs."),
    "server_error": N_(
        "The server reported an internal error. Check the server's logs."),
    "protocol_error": N_(
        "The server's reply did not follow the protocol (see detail). Check that the port really "
        "speaks {proto_upper}."),
    "config_error": N_(
        "mailcanary's configuration cannot be used as it is (see detail). Fix it and run "
        "`mailcanary validate`."),
    "internal_error": N_(
        "This is a bug in mailcanary, not a problem of the server or the account. The daemon's log"
        " has the traceback (level error); please report it with that log line."),
    "spam_folder": N_(
        "The canary was delivered to the Junk/Spam folder. Check the SPF, DKIM and DMARC results "
        "and the sender's reputation."),
    "lost": N_(
        "The canary was accepted by the sending server but not seen by the deadline. Check the "
        "mail queue and logs of the servers in between."),
    "delayed": N_(
        "The canary arrived, but later than the route's SLO. Check queues and greylisting between "
        "the servers."),
    "trigger_failed": N_(
        "The app's test endpoint (the inbound watch's trigger) failed, so no mail was sent (see "
        "detail). Check that the app is up, the URL and method, and the bearer token."),
    "mx_missing": N_(
        "{host} has no MX record (nor an address to fall back to), or only a null "
    "MX: nobody can send mail to it, so bounces and replies are lost. Publish MX records for "
    "the domain's mail servers."),
    "spf_missing": N_(
        "{host} publishes no SPF record (TXT \"v=spf1 ...\"). Receivers such as "
    "Gmail and Yahoo then junk or refuse its mail. Publish one that lists the sending servers."),
    "spf_invalid": N_(
        "The SPF record of {host} is broken (see detail: syntax, several v=spf1 "
    "records, or more than 10 DNS lookups). Receivers treat it as a permanent error, as if "
    "there were none. Fix it to one record within 10 lookups (flatten includes)."),
    "spf_not_authorized": N_(
        "A sending IP gets fail or softfail from {host}'s SPF record (see "
    "detail), so receivers may junk or refuse mail from it. Add the IP (ip4:/ip6:/include:) "
    "to the record, or send through a server the record lists."),
    "dmarc_missing": N_(
        "{host} has no DMARC record (TXT at _dmarc.{host}). Gmail and Yahoo "
    "require one of bulk senders since 2024. Publish e.g. \"v=DMARC1; p=none; "
    "rua=mailto:...\" and tighten p= once reports look clean."),
    "dmarc_invalid": N_(
        "The DMARC record of {host} is not valid (see detail), so receivers "
    "ignore it. It must start with v=DMARC1 and carry p=none|quarantine|reject."),
    "dkim_key_missing": N_(
        "A DKIM selector's key is missing, revoked (empty p=) or does not "
    "parse (see detail), so signatures with that selector fail. Publish the key at "
    "<selector>._domainkey.{host} as your mail service shows it."),
    "mta_sts_invalid": N_(
        "{host} announces MTA-STS, but its policy cannot be fetched, is not "
    "valid, or does not list every MX (see detail). Senders that enforce it will not deliver. "
    "Fix https://mta-sts.{host}/.well-known/mta-sts.txt and change the id= in the TXT record."),
    "tls_rpt_missing": N_(
        "{host} publishes no TLS-RPT record (TXT at _smtp._tls.{host}), so "
    "nobody tells you when senders fail to reach your MX over TLS. Publish \"v=TLSRPTv1; "
    "rua=mailto:...\", or drop tls_rpt from checks."),
    "tls_rpt_invalid": N_(
        "The TLS-RPT record of {host} is not valid (see detail): it must be "
    "\"v=TLSRPTv1; rua=mailto:...\" (or https:)."),
    "blocklisted": N_(
        "A sending IP is listed on a DNS blocklist (see detail for the IP, the zone "
    "and the zone's reason), so receivers that use it refuse or junk its mail. Stop the cause "
    "(compromised account, open relay), then ask the list's operator for removal."),
}

# An MX without STARTTLS: no password is at stake, the mail itself travels in clear text.
MX_STARTTLS_HINT = N_(
    "The MX {host} does not offer STARTTLS, so mail to this domain travels in clear text, and "
    "senders that require TLS (an MTA-STS policy in enforce mode) do not deliver to it. "
    "Enable STARTTLS with a certificate for {host}."
)

# A DNSBL that answers 127.255.255.x refused the query: it is not a listing.
DNSBL_REFUSED_HINT = N_(
    "The blocklist refused to answer (127.255.255.x), so this IP could not be checked; it is "
    "not a listing. Public blocklists such as Spamhaus refuse queries that come through big "
    "public resolvers (8.8.8.8, 1.1.1.1, an ISP's): set [daemon] nameservers to a local "
    "recursive resolver of your own, or use the list's paid data query service."
)


# The token endpoint's error code decides what a person must do about oauth_token_error.
OAUTH_HINTS: dict[str, str] = {
    "invalid_grant": N_(
        "The refresh token was revoked or has expired (password change, consent withdrawn, unused "
        "for months, or Google's 7-day limit for apps in testing). Get a new one with `mailcanary "
        "oauth2 authorize --account {account}`."),
    "consent_required": N_(
        "The user or tenant admin has not consented to the app's mail permissions. Grant admin "
        "consent for the app in Entra ID (API permissions), or run `mailcanary oauth2 authorize "
        "--account {account}` and accept the prompt."),
    "invalid_client": N_(
        "The token endpoint does not accept the client id or secret. Check client_id, and put the "
        "app's current client secret into the secret file (secrets expire: create a new one in the"
        " app registration)."),
    "unauthorized_client": N_(
        "This app may not use this grant. In the app registration allow it (Microsoft: 'Allow "
        "public client flows' for device code; application permissions IMAP.AccessAsApp / "
        "SMTP.SendAsApp with admin consent for client_credentials)."),
    "invalid_scope": N_(
        "The requested scope is not valid for this app. Check oauth2.scope; Microsoft "
        "client_credentials needs https://outlook.office365.com/.default and the permissions "
        "granted with admin consent."),
    "access_denied": N_(
        "The authorization server denied access. Grant the app the mailbox permission (admin "
        "consent), then run `mailcanary oauth2 authorize --account {account}`."),
    "network": N_(
        "The OAuth2 token endpoint cannot be reached. Check token_url, DNS, firewall and proxy "
        "settings of this machine, and ca_file if the endpoint uses a private CA."),
    "bad_reply": N_(
        "The token endpoint's reply is not an OAuth2 token response. Check that token_url is the "
        "provider's token endpoint (not its authorization page)."),
    "missing_refresh_token": N_(
        "There is no refresh token yet. Run `mailcanary oauth2 authorize --account {account}` once"
        " to sign in and store it."),
}

SLOW_ENDPOINT_HINT = N_(
    "The OAuth2 token endpoint did not answer within the account's timeout. Check that this "
    "machine reaches token_url (proxy, firewall) and the provider's status page."
)

BEARER_REJECTED_HINT = N_(
    "The mail server refused the access token the token endpoint issued (the detail has its "
    "status). Check that oauth2.scope covers IMAP/SMTP, that username is the mailbox the token "
    "belongs to, and for app-only (client_credentials) access that the app was granted this "
    "mailbox."
)
