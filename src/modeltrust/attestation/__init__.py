"""What modeltrust vetted, as signed evidence: in-toto Statements (SLSA
Provenance v1 and a scan verdict) in DSSE envelopes."""
