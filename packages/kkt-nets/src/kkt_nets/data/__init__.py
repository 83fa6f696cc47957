"""LP instances: standard form, generators, HiGHS labels, datasets."""
