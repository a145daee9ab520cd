# ruff: noqa: E501
# (bounce texts keep their senders' long lines)
"""Bounces as real servers write them, for the canary with token TOKEN.

Postfix's is what the test bed's Postfix 3.7 wrote (tests/probes/test_bounces.py makes it
live too); the others follow the public examples of each sender's format (addresses and
hosts changed to test names; the structure, field names and wording kept).
"""

from __future__ import annotations

TOKEN = "0123456789abcdef0123456789abcdef"
CANARY_HEADERS = (
    "From: mailcanary <alice@example.test>\r\n"
    "To: <{to}>\r\n"
    "Subject: mailcanary automated delivery test (out)\r\n"
    f"Message-ID: <mailcanary.{TOKEN}@example.test>\r\n"
    f"X-Mailcanary-Token: {TOKEN}\r\n"
)


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


POSTFIX = _crlf(f"""\
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@example.test>
Subject: Undelivered Mail Returned to Sender
To: alice@example.test
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="7D611254636.1796652910/mail.example.test"
Content-Transfer-Encoding: 8bit

This is a MIME-encapsulated message.

--7D611254636.1796652910/mail.example.test
Content-Description: Notification
Content-Type: text/plain; charset=utf-8

This is the mail system at host mail.example.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<unknown@remote.test>: host mx.remote.test[192.0.2.25] said: 550 5.1.1
    <unknown@remote.test>: Recipient address rejected: User unknown (in reply
    to RCPT TO command)

--7D611254636.1796652910/mail.example.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.test
X-Postfix-Queue-ID: 7D611254636
X-Postfix-Sender: rfc822; alice@example.test
Arrival-Date: Mon,  7 Dec 2026 14:15:10 +0000 (UTC)

Final-Recipient: rfc822; unknown@remote.test
Original-Recipient: rfc822;unknown@remote.test
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.remote.test
Diagnostic-Code: smtp; 550 5.1.1 <unknown@remote.test>: Recipient address
    rejected: User unknown

--7D611254636.1796652910/mail.example.test
Content-Description: Undelivered Message
Content-Type: message/rfc822

{CANARY_HEADERS.format(to="unknown@remote.test")}
Token: {TOKEN}

--7D611254636.1796652910/mail.example.test--
""")

GMAIL = _crlf(f"""\
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: alice@example.test
Subject: Delivery Status Notification (Failure)
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000a1b2c3"; report-type=delivery-status

--000000000000a1b2c3
Content-Type: multipart/related; boundary="000000000000a1b2c4"

--000000000000a1b2c4
Content-Type: multipart/alternative; boundary="000000000000a1b2c5"

--000000000000a1b2c5
Content-Type: text/plain; charset="UTF-8"


** Address not found **

Your message wasn't delivered to nobody@gmail.test because the address couldn't be found, or is unable to receive mail.

The response from the remote server was:
550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser

--000000000000a1b2c5
Content-Type: text/html; charset="UTF-8"

<html><body><h1>Address not found</h1><p>Your message wasn't delivered.</p></body></html>
--000000000000a1b2c5--
--000000000000a1b2c4--
--000000000000a1b2c3
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; alice@example.test
Arrival-Date: Mon, 07 Dec 2026 05:16:03 -0800 (PST)
X-Original-Message-ID: <mailcanary.{TOKEN}@example.test>

Final-Recipient: rfc822; nobody@gmail.test
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.test. (192.0.2.27, the server for the domain gmail.test.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try
 550-5.1.1 double-checking the recipient's email address for typos or
 550-5.1.1 unnecessary spaces. Learn more at
 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser d1-20020a05 - gsmtp
Last-Attempt-Date: Mon, 07 Dec 2026 05:16:04 -0800 (PST)

--000000000000a1b2c3
Content-Type: text/rfc822-headers

{CANARY_HEADERS.format(to="nobody@gmail.test")}
--000000000000a1b2c3--
""")

MICROSOFT = _crlf(f"""\
From: postmaster@outlook.test
To: alice@example.test
Subject: Undeliverable: mailcanary automated delivery test (out)
Content-Language: en-US
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="_000_e7a1_"

--_000_e7a1_
Content-Type: multipart/alternative; boundary="_002_e7a1_"

--_002_e7a1_
Content-Type: text/plain; charset="us-ascii"

Your message to someone@contoso.test couldn't be delivered.
someone wasn't found at contoso.test.
alice   Office 365   someone
Action Required      Recipient
Unknown To address

Diagnostic information for administrators:
Generating server: AM0PR01MB1234.eurprd01.prod.outlook.test
Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'

--_002_e7a1_
Content-Type: text/html; charset="us-ascii"

<html><body><p>Your message to someone@contoso.test couldn't be delivered.</p></body></html>
--_002_e7a1_--

--_000_e7a1_
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.test
Received-From-MTA: dns;mail.example.test
Arrival-Date: Mon, 7 Dec 2026 13:16:03 +0000

Original-Recipient: rfc822;someone@contoso.test
Final-Recipient: rfc822;someone@contoso.test
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup
Remote-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.test
X-Display-Name: someone

--_000_e7a1_
Content-Type: message/rfc822

{CANARY_HEADERS.format(to="someone@contoso.test")}
Token: {TOKEN}

--_000_e7a1_--
""")

# Old Exchange: prose only (no delivery-status part).
EXCHANGE_PROSE = _crlf(f"""\
From: System Administrator <postmaster@corp.test>
To: alice@example.test
Subject: Undeliverable: mailcanary automated delivery test (out)
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="xx"

--xx
Content-Type: text/plain; charset=us-ascii

Your message did not reach some or all of the intended recipients.

The following recipient(s) cannot be reached:

      boss@corp.test on 12/7/2026 1:16 PM
            The e-mail account does not exist at the organization this message was sent to.
            <EXCH01.corp.test #5.1.1 smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found>

Diagnostic information for administrators:
Generating server: EXCH01.corp.test
Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'

--xx
Content-Type: message/rfc822

{CANARY_HEADERS.format(to="boss@corp.test")}
Token: {TOKEN}

--xx--
""")

EXIM = _crlf(f"""\
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: alice@example.test
Subject: Mail delivery failed: returning message to sender
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  gone@example.org
    host mx2.example.org [192.0.2.44]
    SMTP error from remote mail server after RCPT TO:<gone@example.org>:
    550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown in virtual mailbox table

------ This is a copy of the message, including all the headers. ------

Return-path: <alice@example.test>
{CANARY_HEADERS.format(to="gone@example.org")}
Token: {TOKEN}
""")

QMAIL = _crlf(f"""\
From: MAILER-DAEMON@mail.example.net
To: alice@example.test
Subject: failure notice

Hi. This is the qmail-send program at mail.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<full@example.net>:
192.0.2.60 does not like recipient.
Remote host said: 552 5.2.2 <full@example.net>: Mailbox full
Giving up on 192.0.2.60.

--- Below this line is a copy of the message.

Return-Path: <alice@example.test>
{CANARY_HEADERS.format(to="full@example.net")}
Token: {TOKEN}
""")

YAHOO = _crlf(f"""\
From: MAILER-DAEMON@yahoo.test
To: alice@example.test
Subject: Failure Notice

Sorry, we were unable to deliver your message to the following address.

<nobody@yahoo.test>:
Remote host said: 554 delivery error: dd This user doesn't have a yahoo.test account (nobody@yahoo.test) [0] - mta1047.mail.ne1.yahoo.test [RCPT_TO]

--- Below this line is a copy of the message.

{CANARY_HEADERS.format(to="nobody@yahoo.test")}
Token: {TOKEN}
""")

DELAYED = POSTFIX.replace(b"Action: failed", b"Action: delayed").replace(
    b"Status: 5.1.1", b"Status: 4.4.1")

FOREIGN = POSTFIX.replace(TOKEN.encode(), b"ffffffffffffffffffffffffffffffff")

GLOBAL = _crlf(f"""\
From: MAILER-DAEMON@example.jp
To: alice@example.test
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=global-delivery-status; boundary="g"

--g
Content-Type: text/plain; charset=utf-8

宛先のメールアドレスには配信できませんでした。

--g
Content-Type: message/global-delivery-status

Reporting-MTA: dns; mx.example.jp

Final-Recipient: utf-8; 受信者@example.jp
Action: failed
Status: 5.7.1
Remote-MTA: dns; mx.example.jp
Diagnostic-Code: smtp; 550 5.7.1 受信拒否: refused by the recipient's receiving settings

--g
Content-Type: message/global-headers

{CANARY_HEADERS.format(to="受信者@example.jp")}
--g--
""")
