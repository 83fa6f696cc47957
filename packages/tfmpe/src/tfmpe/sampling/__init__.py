"""ODE integration of a flow: samples and log densities."""

from tfmpe.sampling.ode import flow_log_prob, integrate_flow

__all__ = ["flow_log_prob", "integrate_flow"]
