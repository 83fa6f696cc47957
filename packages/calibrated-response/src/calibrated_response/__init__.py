"""calibrated_response: probability estimates -> maximum-entropy distributions.

The repository models (variables, propositions and estimates, histogram
distributions) live in :mod:`calibrated_response.models`.
"""
