"""Privacy rights (GDPR/CCPA/CASL): an access export of everything Herald holds on a person, an
erasure that removes or irreversibly masks it while keeping a salted-hash suppression so the
person is never messaged again, and the PII retention purge of contacts and packet rows.

Both requests come from ``herald privacy export|erase`` or the ingest API and run the same code
(:mod:`.export`, :mod:`.erase`); each is recorded in ``herald_ops.privacy_requests`` with counts
only, and an erasure also in ``herald_ops.audit_log``. docs/compliance.md, "Privacy rights".
"""
