"""Berth's Kubernetes operator: reconciles ModelDeployments into inference pods."""
