"""Supervisory controller for digital-boiler plants."""
