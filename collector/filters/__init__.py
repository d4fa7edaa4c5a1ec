"""Source filters: the governance stage between ingestion and the durable log.

Each source may have a tracking plan (``plan.py``, schemas in ``schema.py``) and PII rules
(``pii.py``: selectors, ``detectors.py``, ``actions.py``). ``source.py`` applies both to every
event of the source after it was validated and enriched and before it is encoded and stored;
``check.py`` reports configuration problems to the loader; ``config.py`` holds the typed config.
"""
