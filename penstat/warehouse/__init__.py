"""The working warehouse: its raw layer and ledger (DDL), and how penstat opens it."""
