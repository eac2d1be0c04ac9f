"""Livepatch metadata: CVSS scoring, patch series, the metadata document
(schema, canonical JSON, the copy embedded in the module) and load plans.

    cvss     parse_vector, base_score, severity
    series   load_series, select
    model    Metadata, from_build, to_json, validate, load, embed, extract
    plan     read_loaded, plan

See docs/metadata.md and docs/series.md.
"""
