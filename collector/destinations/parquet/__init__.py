"""Data lake files: events as Parquet, one table per event type or name (Segment's warehouse
schema), partitioned by source and date, in a local directory or an S3-compatible object store.

Modules: ``config`` (settings), ``tables`` (an event's rows: Segment's table and column names,
flattening), ``columns`` (rows -> an Arrow table with inferred types), ``stores`` (a complete
file made durable under its final name, locally or on S3), ``destination`` (the batch -> files).
"""
