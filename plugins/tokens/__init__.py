"""Tokenized-model, contributor and lineage endpoints: not built yet, see issue 6."""
