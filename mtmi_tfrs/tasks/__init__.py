"""Training tasks."""

from mtmi_tfrs.tasks.idw_retrieval import IDWRetrieval

__all__ = ["IDWRetrieval"]
