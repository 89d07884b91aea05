//! Conformance suite: filled by the interactive-flows issue.
