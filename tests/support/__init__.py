"""Helpers for the tlsc end-to-end tests: certificates, peers, and the tlsc runner."""
