"""Recording test doubles of vendor HTTP APIs, each written from the vendor's documented contract
(see base.py for the shared server, ``accepted`` and scripted failures)."""
