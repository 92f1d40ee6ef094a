"""Datasets: safe ingestion of uploaded archives, reference and generated datasets."""
