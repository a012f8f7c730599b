"""Training tasks: what each family's step computes."""

from modelzoo.train.tasks.base import Task, Totals, batch_size_of
from modelzoo.train.tasks.classification import ClassificationTask, RegressionTask

TASKS: dict[str, type[Task]] = {
    "classification": ClassificationTask,
    "regression": RegressionTask,
}

__all__ = [
    "TASKS","ClassificationTask", "RegressionTask", "Task", "Totals", "batch_size_of"]
