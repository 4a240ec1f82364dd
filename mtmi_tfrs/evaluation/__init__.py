"""Evaluation by the ComiRec protocol over merged full-catalogue retrieval."""

from mtmi_tfrs.evaluation.callback import RetrievalEvaluation
from mtmi_tfrs.evaluation.metrics import build_index
from mtmi_tfrs.evaluation.metrics import evaluate
from mtmi_tfrs.evaluation.metrics import evaluate_model
from mtmi_tfrs.evaluation.metrics import retrieval_metrics

__all__ = ["RetrievalEvaluation", "build_index", "evaluate", "evaluate_model", "retrieval_metrics"]
