"""Segments: evaluate a configured segment to contact ids and snapshot its membership."""

from herald.segments.engine import SegmentError, check_segment_sql, evaluate_segment
from herald.segments.snapshot import SnapshotResult, snapshot_segment

__all__ = ["SegmentError", "SnapshotResult", "check_segment_sql", "evaluate_segment", "snapshot_segment"]
