"""Loyalty and personalized-offer recommender for online retailers."""

__version__ = "0.1.0"
