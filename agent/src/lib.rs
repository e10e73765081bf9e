//! The Ampel agent: sources -> batches -> transport to the collector.
