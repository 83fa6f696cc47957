"""Neural networks over tokens."""
