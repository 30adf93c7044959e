"""Segment assets, one per configured segment."""
