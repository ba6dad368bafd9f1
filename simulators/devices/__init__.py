"""Simulated field devices: Modbus and OPC-UA servers, their bindings and injected faults."""
