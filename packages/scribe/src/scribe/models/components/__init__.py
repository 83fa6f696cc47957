"""Components the builders compose: likelihoods, guide families, networks."""

from scribe.models.components.amortizers import (
    TOTAL_COUNT,
    Amortizer,
    Decoder,
    Encoder,
    SufficientStatistic,
)
from scribe.models.components.distributions import BetaPrime, NegativeBinomial
from scribe.models.components.guide_families import (
    AmortizedGuide,
    GroupedAmortizedGuide,
    JointGuide,
    LowRankGuide,
    MeanFieldGuide,
)
from scribe.models.components.likelihoods import (
    NBWithVCPLikelihood,
    NegativeBinomialLikelihood,
    ZeroInflatedNBLikelihood,
    ZINBWithVCPLikelihood,
    capture_adjusted_p,
    element_log_prob,
    log_likelihood,
    nb_log_prob,
    zinb_log_prob,
)

__all__ = [
    "TOTAL_COUNT",
    "AmortizedGuide",
    "Amortizer",
    "BetaPrime",
    "Decoder",
    "Encoder",
    "GroupedAmortizedGuide",
    "JointGuide",
    "LowRankGuide",
    "MeanFieldGuide",
    "NBWithVCPLikelihood",
    "NegativeBinomial",
    "NegativeBinomialLikelihood",
    "SufficientStatistic",
    "ZINBWithVCPLikelihood",
    "ZeroInflatedNBLikelihood",
    "capture_adjusted_p",
    "element_log_prob",
    "log_likelihood",
    "nb_log_prob",
    "zinb_log_prob",
]
