"""Small, dependency-free building blocks every layer may use."""
