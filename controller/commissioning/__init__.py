"""Commissioning a site (`boilerctl commission`): every device reached through the controller's
own drivers, every point read once and judged against what a healthy plant shows."""
