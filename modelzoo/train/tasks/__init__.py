"""Training tasks: what each family's step computes."""

from modelzoo.train.tasks.base import Task, Totals, batch_size_of
from modelzoo.train.tasks.classification import ClassificationTask, RegressionTask
from modelzoo.train.tasks.ctc import CTCTask
from modelzoo.train.tasks.detection import DetectionTask
from modelzoo.train.tasks.generative import GANTask, ReconstructionTask, VAETask
from modelzoo.train.tasks.image_translation import CycleGANTask, Pix2PixTask
from modelzoo.train.tasks.lm import LanguageModelingTask
from modelzoo.train.tasks.segmentation import SegmentationTask
from modelzoo.train.tasks.seq2seq import Seq2SeqTask

TASKS: dict[str, type[Task]] = {
    "classification": ClassificationTask,
    "regression": RegressionTask,
    "lm": LanguageModelingTask,
    "language_modeling": LanguageModelingTask,  # the name text datasets state in their info
    "token_classification": LanguageModelingTask,  # per-step targets, e.g. copy_memory
    "seq2seq": Seq2SeqTask,
    "reconstruction": ReconstructionTask,
    "vae": VAETask,
    "gan": GANTask,
    "pix2pix": Pix2PixTask,
    "cyclegan": CycleGANTask,
    "ctc": CTCTask,
    "speech_recognition": CTCTask,  # the task name of the audio family's CTC models
    "detection": DetectionTask,
    "segmentation": SegmentationTask,
}

__all__ = [
    "TASKS",
    "CTCTask",
    "ClassificationTask",
    "DetectionTask",
    "GANTask",
    "LanguageModelingTask",
    "ReconstructionTask",
    "RegressionTask",
    "SegmentationTask",
    "Seq2SeqTask",
    "Task",
    "Totals",
    "VAETask",
    "batch_size_of",
]
