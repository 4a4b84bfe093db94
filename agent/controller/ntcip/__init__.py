"""NTCIP 1202 over SNMPv1 (UDP, or PMPP on a byte stream)."""
