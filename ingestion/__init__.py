"""Ingestion: loaders -> chunking -> embedding -> stores."""
