"""Reliability and security tests: crashes, concurrency, corruption, hostile files, bad input, limits."""
