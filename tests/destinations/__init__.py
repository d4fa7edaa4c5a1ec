"""Tests of every destination: the shared contract and one module per destination."""
