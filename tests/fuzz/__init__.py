"""Fuzzing of the network side: mutated server flights fed to each backend's client session.

``record.py`` regenerates the seed corpus, ``mutate.py`` mutates TLS records,
``target.py`` drives a session the way the core does, ``tests/test_fuzz.py`` runs it all.
"""
