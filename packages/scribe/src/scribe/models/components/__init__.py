"""Components the builders compose: likelihoods (more to come)."""

from scribe.models.components.likelihoods import (
    capture_adjusted_p,
    element_log_prob,
    log_likelihood,
    nb_log_prob,
    zinb_log_prob,
)

__all__ = [
    "capture_adjusted_p",
    "element_log_prob",
    "log_likelihood",
    "nb_log_prob",
    "zinb_log_prob",
]
