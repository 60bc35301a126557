"""Senders: everything that writes contract deliveries into an inbox.

    delivery   the one delivery writer (data files, manifest with checksums, `_READY`)
    synthetic  a deterministic synthetic national prison system
    real       adapters that send five real published data sets

Nothing here reads or writes the warehouse: a sender holds only the contract.
"""
