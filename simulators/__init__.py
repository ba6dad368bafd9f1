"""Simulated digital-boiler plant: physics model and simulated field devices."""
