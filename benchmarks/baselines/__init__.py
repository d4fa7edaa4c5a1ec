"""What the collector is measured against: a no-op aiohttp handler, nginx, raw SQLite inserts."""
