"""Fieldbus access: the register codec, read planning and the drivers of field devices."""
