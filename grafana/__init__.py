"""Grafana dashboards of a digital-boiler site, generated from Python (grafana-foundation-sdk).

`grafana/generate.py` writes `grafana/dashboards/*.json`, which are committed and provisioned;
`grafana/influxql.py` holds the raw InfluxQL query type the sdk lacks; `grafana/panels.py` the
operator conventions (units, thresholds, colours) shared by the dashboards. The provisioning files
(`grafana/provisioning/`) are plain YAML, not generated.
"""
