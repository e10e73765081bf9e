//! Mail delivery with lettre: a file outbox (the default) or SMTP.
