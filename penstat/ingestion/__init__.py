"""penstat ingestion: from a delivery folder in the inbox to rows in the raw layer."""
