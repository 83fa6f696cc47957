"""Models: builders and the components they compose."""
