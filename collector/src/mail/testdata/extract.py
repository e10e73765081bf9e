"""Prints the messages of a Maildir (or one .eml file) as JSON, for Ampel's mail tests.

usage: extract.py MAILDIR_OR_EML OUTDIR

Each attachment is written to OUTDIR byte for byte (transfer encoding undone) and listed with
its file name, content type and path, so the test can compare it with what it sent.
"""

import email
import email.header
import email.policy
import json
import mailbox
import os
import sys


def decoded(header):
    if header is None:
        return None
    return str(email.header.make_header(email.header.decode_header(header))).replace("\n", "").replace("\r", "")


def describe(msg, index, outdir):
    info = {
        # Decoded (RFC 2047) and unfolded: what a mail client shows.
        "subject": decoded(msg["subject"]),
        "from": msg["from"],
        "to": msg["to"],
        "message_id": msg["message-id"],
        "cc": msg["cc"],
        # Added by aiosmtpd's Mailbox handler: the SMTP envelope's recipients.
        "rcpt_to": msg["x-rcptto"],
        "list_unsubscribe": msg["list-unsubscribe"],
        "list_unsubscribe_post": msg["list-unsubscribe-post"],
        "html": None,
        "text": None,
        "attachments": [],
    }
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        if part.get_filename():
            path = os.path.join(outdir, f"{index}-{len(info['attachments'])}.bin")
            with open(path, "wb") as f:
                f.write(part.get_payload(decode=True))
            info["attachments"].append(
                {
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "path": path,
                }
            )
        elif part.get_content_type() == "text/html":
            charset = part.get_content_charset() or "utf-8"
            info["html"] = part.get_payload(decode=True).decode(charset)
        elif part.get_content_type() == "text/plain":
            charset = part.get_content_charset() or "utf-8"
            info["text"] = part.get_payload(decode=True).decode(charset)
    return info


def main() -> None:
    source, outdir = sys.argv[1:]
    if os.path.isdir(source):
        messages = list(mailbox.Maildir(source, factory=None, create=False))
    else:
        with open(source, "rb") as f:
            messages = [email.message_from_binary_file(f, policy=email.policy.compat32)]
    print(json.dumps([describe(m, i, outdir) for i, m in enumerate(messages)]))


if __name__ == "__main__":
    main()
