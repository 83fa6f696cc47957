"""Networks that learn to solve linear programs from KKT residuals (with JEPA)."""
