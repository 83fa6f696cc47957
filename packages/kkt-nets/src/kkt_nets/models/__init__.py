"""Networks (``models.py``), the KKT loss (``losses.py``) and JEPA utilities."""
