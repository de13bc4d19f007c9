"""Simulators and publishers (NTNDArray server, ZMQ spectra)."""
