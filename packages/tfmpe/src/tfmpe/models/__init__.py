"""Example simulators with known or reference posteriors."""
