"""probes/roundtrip"""
