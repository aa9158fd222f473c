"""The sample viewer behind scripts/view_samples.py (docs/viewer.md): stage-3 data, tagged or not,
or a training export, as self-contained HTML pages, one per topic, with an index page."""
