"""Berth's bundled generation server."""
